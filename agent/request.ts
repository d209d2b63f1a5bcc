// The request an agent sends for one job: the endpoint kind's body (agent/endpoints.ts),
// the spec's headers, and the built-in mock's knobs as headers. The headers depend on the
// spec alone, so one Headers object is built per spec and shared by its requests.

import { DEFAULT_TOKENIZER } from "../contract/spec";
import type { TargetSpec } from "../contract/spec";
import { kindHeaders, requestBody } from "./endpoints";
import type { Job } from "./prompt";

/**
 * builtin:mock takes its shape per request in these headers (mock/mock.ts; a test checks
 * they match). Not imported: the mock module is Worker code, the agent must also run on Node.
 */
export const MOCK_HEADERS = {
  ttftMs: "x-mock-ttft-ms",
  itlMs: "x-mock-itl-ms",
  errorRate: "x-mock-error-rate",
  reasoningTokens: "x-mock-reasoning-tokens",
  toolCalls: "x-mock-tool-calls",
  tokenizer: "x-mock-tokenizer",
} as const;

/** The request for one job: the kind's body (agent/endpoints.ts), the spec's headers, the mock's knobs. */
export function buildRequest(target: TargetSpec, job: Job): RequestInit {
  const headers = headersFor(target);
  if (target.api === "http") {
    return { method: target.method ?? "GET", headers, ...(target.body !== undefined ? { body: target.body } : {}) };
  }
  return { method: "POST", headers, body: JSON.stringify(requestBody(target, job)) };
}

/**
 * A target's request headers depend on the spec alone: built once per spec object and
 * shared by its requests (fetch copies them; nothing here writes to them after).
 */
const builtHeaders = new WeakMap<TargetSpec, Headers>();

function headersFor(target: TargetSpec): Headers {
  let headers = builtHeaders.get(target);
  if (!headers) {
    headers = newHeaders(target);
    builtHeaders.set(target, headers);
  }
  return headers;
}

function newHeaders(target: TargetSpec): Headers {
  const headers = new Headers();
  if (target.api !== "http") headers.set("content-type", "application/json");
  for (const [name, value] of Object.entries(target.headers)) headers.set(name, value);
  kindHeaders(target, headers);
  // Every agent, edge or external, gives the mock the spec's shape, and the tokenizer its usage is counted by.
  const mock = target.mock;
  if (mock) {
    for (const key of ["ttftMs", "itlMs", "errorRate", "reasoningTokens"] as const) {
      const v = mock[key];
      if (v !== undefined) headers.set(MOCK_HEADERS[key], String(v));
    }
    if (mock.toolCalls !== undefined) headers.set(MOCK_HEADERS.toolCalls, mock.toolCalls ? "1" : "0");
    headers.set(MOCK_HEADERS.tokenizer, target.tokenizer ?? DEFAULT_TOKENIZER);
  }
  return headers;
}
