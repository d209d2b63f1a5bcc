// The two JSON operations of api "template": reading the value at a dotted path
// (choices.0.delta.content), and filling a body template's placeholders.

import { PLACEHOLDER } from "../contract/spec";

/** The value at `path` ("a.0.b": keys of objects, indexes of arrays); undefined where there is none. */
export function getPath(doc: unknown, path: string): unknown {
  let v = doc;
  for (const key of path.split(".")) {
    if (Array.isArray(v)) v = /^\d+$/.test(key) ? v[Number(key)] : undefined;
    else if (typeof v === "object" && v !== null && Object.hasOwn(v, key)) v = (v as Record<string, unknown>)[key];
    else return undefined;
  }
  return v;
}

/**
 * The template with its placeholders filled. A string that is one placeholder and nothing
 * else becomes the value itself, so `"max_tokens": "{{max_tokens}}"` sends a number;
 * inside a longer string a placeholder becomes its text. Keys are left as they are.
 */
export function fillTemplate(template: unknown, values: Record<string, string | number>): unknown {
  const fill = (v: unknown): unknown => {
    if (typeof v === "string") {
      const whole = new RegExp(`^${PLACEHOLDER.source}$`).exec(v);
      const name = whole?.[1];
      if (name !== undefined && Object.hasOwn(values, name)) return values[name];
      return v.replace(PLACEHOLDER, (m, key: string) => (Object.hasOwn(values, key) ? String(values[key]) : m));
    }
    if (Array.isArray(v)) return v.map(fill);
    if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  return fill(template);
}
