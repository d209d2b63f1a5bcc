// How a refused body is told (README, "The API"): every zod issue gets a message that
// names its field and never the input value, installed for every schema in the Worker
// (request bodies too, see body.ts), and the first issue of a failed parse becomes the
// API's error (StatusError: 400 invalid_spec or unknown_field, 422 out_of_range). A key
// "__proto__" anywhere in a body is refused, naming its path.

import { z } from "zod";
import { StatusError } from "./errors";

function describe(expected: string): string {
  if (expected === "int") return "an integer";
  if (expected === "record") return "an object";
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

// Size issues of numbers carry the bound itself; those of strings and arrays a length.
const NUMERIC_ORIGINS = new Set(["number", "int", "bigint"]);

// Messages for issues whose schema gave none. They never include the input value.
// Installed for every schema in the Worker (request bodies too, see body.ts), so all
// 400s read alike; a schema's own `error` still takes precedence.
const issueMessage: z.core.$ZodErrorMap = (iss) => {
  if (iss.input === undefined && iss.code === "invalid_type") return "is required";
  switch (iss.code) {
    case "invalid_type":
      return `must be ${describe(iss.expected)}`;
    case "invalid_value":
      return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "too_big":
      if (NUMERIC_ORIGINS.has(iss.origin)) return `must be ${iss.inclusive ? "at most" : "less than"} ${iss.maximum}`;
      return iss.origin === "string" ? `must be at most ${iss.maximum} characters long` : `must have at most ${iss.maximum} items`;
    case "too_small":
      if (NUMERIC_ORIGINS.has(iss.origin)) return `must be ${iss.inclusive ? "at least" : "greater than"} ${iss.minimum}`;
      if (iss.minimum === 1) return "must not be empty";
      return iss.origin === "string" ? `must be at least ${iss.minimum} characters long` : `must have at least ${iss.minimum} items`;
    default:
      return "is invalid";
  }
};

z.config({ customError: issueMessage });

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `${out === "" ? "" : "."}${String(p)}`;
  return out === "" ? "body" : out;
}

// A key is echoed only if it is plain: the keys of a hostile body could carry anything.
const PLAIN_KEY = /^[\w$-]{1,64}$/;

interface KeyNode {
  value: unknown;
  key: string | number | undefined;
  parent: KeyNode | undefined;
}

/**
 * JSON.parse keeps "__proto__" as an ordinary key, but zod's records (thresholds,
 * target.headers) copy keys into a fresh object by assignment, where "__proto__" sets the
 * prototype instead: the entry silently vanished. It is refused wherever it appears in a
 * body, naming its path. ("constructor" and "prototype" need nothing: records keep them
 * as plain keys and strict objects refuse them as unknown fields.) The walk keeps parent
 * links rather than paths and uses no recursion, so deep nesting costs linear memory.
 */
export function forbiddenKeyError(body: unknown): StatusError | undefined {
  const stack: KeyNode[] = [{ value: body, key: undefined, parent: undefined }];
  // Only objects and arrays are visited: a report's thousands of numbers cost nothing.
  const visit = (value: unknown, key: string | number, parent: KeyNode) => {
    if (typeof value === "object" && value !== null) stack.push({ value, key, parent });
  };
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    const value = node.value;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) visit(value[i], i, node);
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    for (const key of Object.keys(value)) {
      if (key === "__proto__") {
        const path: PropertyKey[] = [key];
        for (let n: KeyNode | undefined = node; n?.key !== undefined; n = n.parent) {
          path.unshift(typeof n.key === "number" || PLAIN_KEY.test(n.key) ? n.key : "?");
        }
        return new StatusError(400, "unknown_field", `${formatPath(path)} is not allowed: no body may use the key "__proto__".`);
      }
      visit((value as Record<string, unknown>)[key], key, node);
    }
  }
  return undefined;
}

// The one place where schema issues become API errors: the first issue decides.
export function zodToStatus(error: z.ZodError): StatusError {
  const issue = error.issues[0];
  if (issue === undefined) return new StatusError(400, "invalid_spec", "body is invalid.");
  const where = formatPath(issue.path);
  switch (issue.code) {
    case "unrecognized_keys":
      return new StatusError(400, "unknown_field", `${formatPath([...issue.path, issue.keys[0] ?? ""])} is not a known field.`);
    case "too_big":
    case "too_small":
      return new StatusError(422, "out_of_range", `${where} ${issue.message}.`);
    case "custom": {
      const p = issue.params ?? {};
      if (p.error instanceof StatusError) return p.error;
      const status = typeof p.status === "number" ? p.status : 400;
      return new StatusError(status, typeof p.code === "string" ? p.code : "invalid_spec", `${where} ${issue.message}.`);
    }
    default:
      return new StatusError(400, "invalid_spec", `${where} ${issue.message}.`);
  }
}
