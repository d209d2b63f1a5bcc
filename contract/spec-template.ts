// target.template, for api "template" (README, "The API"): any JSON API measured by a body
// template and where its text is. Apart from the rest of the target because the agent
// fills the same placeholders the schema checks, so both read them from here.

import { z } from "zod";
import { MAX_BODY_BYTES, fail, utf8 } from "./spec-fields";

/** The placeholders a template body may use; anything else in double braces is refused. */
export const TEMPLATE_PLACEHOLDERS = ["prompt", "max_tokens", "model"] as const;
/** `{{name}}` in a template body, spaces inside the braces allowed. */
export const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
// A dotted path into a JSON document: keys and array indexes, e.g. choices.0.delta.content.
const JSON_PATH = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+){0,15}$/, {
    error: "must be a dotted path of at most 16 keys or indexes, e.g. choices.0.message.content",
  });

// Deeper than any real API's body; filling a template recurses once per level.
const MAX_TEMPLATE_DEPTH = 32;

/** The placeholder names used in a JSON value's strings, and how deep it nests (walked without recursion). */
function walkTemplate(value: unknown): { names: Set<string>; depth: number } {
  const names = new Set<string>();
  let depth = 0;
  const stack: [unknown, number][] = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, d] = top;
    depth = Math.max(depth, d);
    if (typeof v === "string") for (const m of v.matchAll(PLACEHOLDER)) names.add(m[1] ?? "");
    else if (typeof v === "object" && v !== null && d < MAX_TEMPLATE_DEPTH + 1) {
      for (const x of Array.isArray(v) ? v : [...Object.keys(v), ...Object.values(v)]) stack.push([x, d + 1]);
    }
  }
  return { names, depth };
}

/** The placeholder names a template body uses. */
export function templatePlaceholders(value: unknown): Set<string> {
  return walkTemplate(value).names;
}

// api "template": any JSON API measured by a body template and where its text is.
export const TemplateSchema = z
  .strictObject({
    body: z.record(z.string(), z.unknown()),
    textPath: JSON_PATH,
    streamTextPath: JSON_PATH.optional(),
    usagePath: JSON_PATH.optional(),
  })
  .superRefine((t, ctx) => {
    const { names, depth } = walkTemplate(t.body);
    if (depth > MAX_TEMPLATE_DEPTH) return fail(ctx, ["body"], `must nest at most ${MAX_TEMPLATE_DEPTH} levels deep`, "out_of_range", 422);
    if (utf8.encode(JSON.stringify(t.body)).length > MAX_BODY_BYTES) {
      return fail(ctx, ["body"], `must be at most ${MAX_BODY_BYTES} bytes as JSON`, "out_of_range", 422);
    }
    const unknown = [...names].find((n) => !(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(n));
    // The unknown name is not echoed: a body may carry anything.
    if (unknown !== undefined) return fail(ctx, ["body"], "uses a placeholder other than {{prompt}}, {{max_tokens}} and {{model}}");
    if (!names.has("prompt")) return fail(ctx, ["body"], "must use {{prompt}} somewhere, or no prompt is ever sent");
  });
