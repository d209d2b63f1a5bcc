// Hostile and malformed requests at every route (docs/SECURITY.md). Each row is refused
// with its status and error code in the one error shape, and nothing changes: the
// fixture runs' phase, counts and agents, the number of runs, and the service drain
// state are compared before and after. Then: no secret in any response of any route,
// and run creation rate-limited per API token.
//
// Not here: a run against a redirecting target counts every request as a failure and
// never follows the redirect. That needs a real HTTP server and real agents, so it is
// covered end to end in test/node/redirect-e2e.test.ts.
//
// The Worker is called with MAX_RUNS_PER_MINUTE=0 (the documented off switch): this
// file sends dozens of run creations, and the rate limiter has its own tests below.

import { env } from "cloudflare:workers";
import {
  createExecutionContext,
  listDurableObjectIds,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { RunCoordinator } from "../durable/RunCoordinator";
import worker from "../worker/index";
import { FixedWindow, runsPerMinute } from "../worker/ratelimit";
import { MOCK_MAX_BODY_BYTES } from "../mock/mock";
import { API_TOKEN, mockSpec, setClock } from "./helpers";
import type { TestRun } from "./helpers";

const BASE = "https://edgeperf.test";
const MAX_BODY_BYTES = 1_048_576; // wrangler.toml

/** The test env with some vars or bindings replaced (undefined removes one). */
function envWith(overrides: Record<string, unknown>): Env {
  return new Proxy(env, {
    get: (target, key) => (typeof key === "string" && Object.hasOwn(overrides, key) ? overrides[key] : Reflect.get(target, key)),
  });
}

const QUIET = envWith({ MAX_RUNS_PER_MINUTE: "0" });

interface Sent {
  status: number;
  text: string;
  body: any;
  headers: Headers;
}

interface SendOptions {
  token?: string | null;
  json?: unknown;
  raw?: BodyInit;
  type?: string;
  headers?: Record<string, string>;
  env?: Env;
}

async function send(method: string, path: string, opts: SendOptions = {}): Promise<Sent> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? API_TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const body = "json" in opts ? JSON.stringify(opts.json) : opts.raw;
  if (body !== undefined) headers["content-type"] = opts.type ?? "application/json";
  const ctx = createExecutionContext();
  const req = new Request<unknown, IncomingRequestCfProperties>(BASE + path, { method, headers, body });
  const res = await worker.fetch(req, opts.env ?? QUIET, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* plain text */
  }
  return { status: res.status, text, body: parsed, headers: res.headers };
}

function expectError(res: Sent, status: number, code: string): void {
  expect(res.status, res.text).toBe(status);
  expect(Object.keys(res.body)).toEqual(["error"]);
  expect(res.body.error.code).toBe(code);
  expect(typeof res.body.error.message).toBe("string");
  expect(res.text).not.toMatch(/at .*\.ts:\d+|stack/i);
}

/** A body of `bytes` bytes, streamed, so the request declares no Content-Length. */
function stream(bytes: number): ReadableStream<Uint8Array> {
  const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      controller.enqueue(chunk);
      sent += chunk.byteLength;
    },
  });
}

// ── Fixtures: one run in each phase, plus one at its agent cap ────────────────

interface Fixture extends TestRun {
  agents: string[];
  seqs: number[];
}

type FixtureName = "live" | "draining" | "complete" | "full";
const fx = {} as Record<FixtureName, Fixture>;

async function newRun(spec: Record<string, unknown>, on: Env = QUIET): Promise<Fixture> {
  const res = await send("POST", "/v1/runs", { json: spec, env: on });
  expect(res.status, res.text).toBe(201);
  const stub = env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(res.body.id));
  const run: Fixture = {
    id: res.body.id,
    readToken: res.body.readToken,
    agentToken: res.body.agentToken,
    stub,
    clock: Date.now(),
    agents: [],
    seqs: [],
  };
  await setClock(run, run.clock);
  return run;
}

async function joinAs(run: Fixture, name: string): Promise<string> {
  const res = await send("POST", `/v1/runs/${run.id}/agents`, { token: run.agentToken, json: { name } });
  expect(res.status, res.text).toBe(200);
  run.agents.push(res.body.agentId);
  return res.body.agentId;
}

async function leaseFor(run: Fixture, agentId: string, want: number): Promise<number[]> {
  const res = await send("POST", `/v1/runs/${run.id}/leases`, {
    token: run.agentToken,
    json: { agentId, requestId: `req-${run.seqs.length}-${agentId}`, want },
  });
  expect(res.status, res.text).toBe(200);
  const seqs = res.body.credits.map((c: { seq: number }) => c.seq);
  run.seqs.push(...seqs);
  return seqs;
}

// Long drain and grace windows: nothing moves on its own while the table runs.
const FIXTURE_SPEC = { stop: { requests: 40 }, load: { concurrency: 4 }, graceSeconds: 300, drainTimeoutSeconds: 3600 };

beforeAll(async () => {
  fx.live = await newRun(mockSpec(FIXTURE_SPEC));
  const a = await joinAs(fx.live, "a");
  const b = await joinAs(fx.live, "b");
  await leaseFor(fx.live, a, 2); // seqs 0, 1
  await leaseFor(fx.live, b, 1); // seq 2

  fx.draining = await newRun(mockSpec(FIXTURE_SPEC));
  await leaseFor(fx.draining, await joinAs(fx.draining, "a"), 2);
  expect((await send("POST", `/v1/runs/${fx.draining.id}/stop`, { json: { mode: "graceful" } })).body.phase).toBe("draining");

  fx.complete = await newRun(mockSpec({ ...FIXTURE_SPEC, stop: { requests: 1 } }));
  const c = await joinAs(fx.complete, "a");
  const [seq] = await leaseFor(fx.complete, c, 1);
  const done = await send("POST", `/v1/runs/${fx.complete.id}/reports`, {
    token: fx.complete.agentToken,
    json: { agentId: c, reportId: "done", inflight: 0, results: [{ seq, ok: true, latencyMs: 5 }] },
  });
  expect(done.status, done.text).toBe(200);

  fx.full = await newRun(mockSpec(FIXTURE_SPEC), envWith({ MAX_RUNS_PER_MINUTE: "0", MAX_AGENTS: "1" }));
  await joinAs(fx.full, "only");

  const phases = await Promise.all(
    Object.values(fx).map(async (r) => (await send("GET", `/v1/runs/${r.id}`, { token: r.readToken })).body.phase),
  );
  expect(phases).toEqual(["running", "draining", "complete", "created"]);
});

/** Everything a refused request must leave alone. */
async function world() {
  const runs: Record<string, unknown> = {};
  for (const [name, run] of Object.entries(fx)) {
    const s = (await send("GET", `/v1/runs/${run.id}`, { token: run.readToken })).body;
    runs[name] = { phase: s.phase, status: s.status, partial: s.partial, counts: s.counts, warmup: s.warmup, agents: s.agents };
  }
  return {
    runCount: (await listDurableObjectIds(env.RUN_COORDINATOR)).length,
    drain: (await send("GET", "/v1/admin/drain")).body,
    runs,
  };
}

// ── Request builders ───────────────────────────────────────────────────────────

const create =
  (json: unknown, opts: SendOptions = {}) =>
  () =>
    send("POST", "/v1/runs", { json, ...opts });
const createRaw = (raw: BodyInit, type?: string) => () => send("POST", "/v1/runs", { raw, ...(type ? { type } : {}) });
const remote = (target: Record<string, unknown>) =>
  mockSpec({ target: { url: "https://api.example.org/v1/chat/completions", model: "m", ...target } });

const path = (name: FixtureName, tail = "") => `/v1/runs/${fx[name].id}${tail}`;
const read = (name: FixtureName, tail: string, token?: (r: Fixture) => string | null) => () =>
  send("GET", path(name, tail), { token: token ? token(fx[name]) : fx[name].readToken });
const agent = (name: FixtureName, route: string, json: (r: Fixture) => unknown, token?: (r: Fixture) => string) => () =>
  send("POST", path(name, `/${route}`), { token: token ? token(fx[name]) : fx[name].agentToken, json: json(fx[name]) });
const agentRaw = (name: FixtureName, route: string, raw: (r: Fixture) => BodyInit) => () =>
  send("POST", path(name, `/${route}`), { token: fx[name].agentToken, raw: raw(fx[name]) });

const A = (r: Fixture) => r.agents[0]!;
const B = (r: Fixture) => r.agents[1]!;
const leaseBody = (extra: Record<string, unknown>) => (r: Fixture) => ({ agentId: A(r), requestId: "hostile", want: 1, ...extra });
const reportBody = (extra: Record<string, unknown>) => (r: Fixture) => ({ agentId: A(r), reportId: "hostile", inflight: 0, ...extra });
const result = (extra: Record<string, unknown> = {}) => ({ seq: 0, ok: true, latencyMs: 12, ...extra });
const many = (n: number, item: (i: number) => unknown) => Array.from({ length: n }, (_, i) => item(i));

interface Case {
  name: string;
  send: () => Promise<Sent>;
  status: number;
  code: string;
}

const CASES: Case[] = [
  // POST /v1/runs: bodies
  {
    name: "creating a run from truncated JSON is refused with 400 invalid_json",
    send: createRaw('{"target":{"url":"builtin:mock"},"stop":{"requ'),
    status: 400,
    code: "invalid_json",
  },
  {
    name: "creating a run from bytes that are not UTF-8 is refused with 400 invalid_json",
    send: createRaw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
    status: 400,
    code: "invalid_json",
  },
  {
    name: "creating a run from a text/plain body is refused with 415",
    send: createRaw(JSON.stringify(mockSpec()), "text/plain"),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "creating a run from a body over MAX_BODY_BYTES with a Content-Length is refused with 413",
    send: createRaw(JSON.stringify({ ...mockSpec(), pad: "x".repeat(MAX_BODY_BYTES) })),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "creating a run from a streamed body over MAX_BODY_BYTES without a Content-Length is refused with 413",
    send: () => send("POST", "/v1/runs", { raw: stream(MAX_BODY_BYTES + 64 * 1024) }),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "creating a run from a JSON array is refused with 400 invalid_spec",
    send: create([mockSpec()]),
    status: 400,
    code: "invalid_spec",
  },
  { name: "creating a run from JSON null is refused with 400 invalid_spec", send: create(null), status: 400, code: "invalid_spec" },
  {
    name: "creating a run with an unknown top-level field is refused with 400 unknown_field",
    send: create({ ...mockSpec(), priority: "high" }),
    status: 400,
    code: "unknown_field",
  },
  {
    name: "creating a run whose request count is 1e400 in the raw JSON (Infinity once parsed) is refused with 400",
    send: createRaw('{"target":{"url":"builtin:mock"},"agents":{"edge":0},"stop":{"requests":1e400}}'),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "creating a run whose thresholds hold a __proto__ key is refused with 400 unknown_field, not run without them",
    send: createRaw('{"target":{"url":"builtin:mock"},"agents":{"edge":0},"stop":{"requests":1},"thresholds":{"__proto__":"<5"}}'),
    status: 400,
    code: "unknown_field",
  },
  {
    name: "creating a run with a target header named __proto__ is refused with 400 unknown_field, not sent without it",
    send: createRaw('{"target":{"url":"builtin:mock","headers":{"__proto__":"x"}},"agents":{"edge":0},"stop":{"requests":1}}'),
    status: 400,
    code: "unknown_field",
  },
  {
    name: "creating a run from JSON nested 100,000 levels deep is refused with 400, not a stack overflow",
    send: createRaw(`${"[".repeat(100_000)}${"]".repeat(100_000)}`),
    status: 400,
    code: "invalid_spec",
  },
  // POST /v1/runs: caps and ranges
  {
    name: "creating a run with a concurrency of 1e20 is refused with 422 exceeds_cap",
    send: create(mockSpec({ load: { concurrency: 1e20 } })),
    status: 422,
    code: "exceeds_cap",
  },
  {
    name: "creating a run with a concurrency one above MAX_CONCURRENCY is refused with 422 exceeds_cap",
    send: create(mockSpec({ load: { concurrency: 1025 } })),
    status: 422,
    code: "exceeds_cap",
  },
  {
    name: "creating a run with a rate above MAX_RATE is refused with 422 exceeds_cap",
    send: create(mockSpec({ load: { rate: 10_001 } })),
    status: 422,
    code: "exceeds_cap",
  },
  {
    name: "creating a run with more requests than MAX_REQUESTS is refused with 422 exceeds_cap",
    send: create(mockSpec({ stop: { requests: 10_000_001 } })),
    status: 422,
    code: "exceeds_cap",
  },
  {
    name: "creating a run longer than MAX_DURATION_SECONDS is refused with 422 exceeds_cap",
    send: create(mockSpec({ stop: { durationSeconds: 86_401 } })),
    status: 422,
    code: "exceeds_cap",
  },
  {
    name: "creating a run with more edge agents than MAX_AGENTS (256) is refused with 422 exceeds_cap",
    send: create(mockSpec({ agents: { edge: 257 } })),
    status: 422,
    code: "exceeds_cap",
  },
  {
    name: "creating a run at 5e-324 requests/s (a next slot of Infinity) is refused with 422 out_of_range",
    send: create(mockSpec({ load: { rate: 5e-324 } })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "creating a run with a negative concurrency is refused with 422 out_of_range",
    send: create(mockSpec({ load: { concurrency: -4 } })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "creating a run with a fractional concurrency is refused with 400 invalid_spec",
    send: create(mockSpec({ load: { concurrency: 2.5 } })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "creating a run with the concurrency as a string is refused with 400 invalid_spec",
    send: create(mockSpec({ load: { concurrency: "8" } })),
    status: 400,
    code: "invalid_spec",
  },
  // POST /v1/runs: targets (ALLOWED_TARGETS is "127.0.0.1:*,*.example.com,api.example.org")
  {
    name: "creating a run against 127.0.0.1 written as the integer 2130706433 is refused with 400 invalid_target",
    send: create(remote({ url: "http://2130706433:8787/v1" })),
    status: 400,
    code: "invalid_target",
  },
  {
    name: "creating a run against 127.0.0.1 written as 0x7f.1 is refused with 400 invalid_target",
    send: create(remote({ url: "http://0x7f.1:8787/v1" })),
    status: 400,
    code: "invalid_target",
  },
  {
    name: "creating a run against the cloud metadata address is refused with 403",
    send: create(remote({ url: "http://169.254.169.254/latest/meta-data/" })),
    status: 403,
    code: "target_not_allowed",
  },
  {
    name: "creating a run against loopback written as IPv4-mapped IPv6 is refused with 403",
    send: create(remote({ url: "http://[::ffff:127.0.0.1]:8787/v1" })),
    status: 403,
    code: "target_not_allowed",
  },
  {
    name: "creating a run against an allowed host with userinfo is refused with 400 invalid_target",
    send: create(remote({ url: "https://user:pw@api.example.org/v1" })),
    status: 400,
    code: "invalid_target",
  },
  {
    name: "creating a run against an allowed name used as a prefix of an attacker's domain is refused with 403",
    send: create(remote({ url: "https://api.example.org.attacker.net/v1" })),
    status: 403,
    code: "target_not_allowed",
  },
  {
    name: "creating a run that sets the target's Host header is refused with 400 invalid_header",
    send: create(remote({ headers: { Host: "internal.corp" } })),
    status: 400,
    code: "invalid_header",
  },
  {
    name: "creating a run that sets Transfer-Encoding is refused with 400 invalid_header",
    send: create(remote({ headers: { "transfer-encoding": "chunked" } })),
    status: 400,
    code: "invalid_header",
  },
  {
    name: "creating a run whose notify URL is IPv6 loopback is refused with 403",
    send: create(mockSpec({ notify: { url: "http://[::1]/hook" } })),
    status: 403,
    code: "target_not_allowed",
  },
  // POST /v1/runs: tokens
  {
    name: "creating a run without a token is refused with 401 unauthorized",
    send: create(mockSpec(), { token: null }),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "creating a run with a wrong token is refused with 401 invalid_token",
    send: create(mockSpec(), { token: "not-the-api-token" }),
    status: 401,
    code: "invalid_token",
  },
  {
    name: "creating a run with a run's read token is refused with 401 invalid_token",
    send: () => send("POST", "/v1/runs", { json: mockSpec(), token: fx.live.readToken }),
    status: 401,
    code: "invalid_token",
  },
  {
    name: "creating a run with Basic authentication is refused with 401 unauthorized",
    send: create(mockSpec(), { token: null, headers: { authorization: `Basic ${btoa(`x:${API_TOKEN}`)}` } }),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "creating a run with a 600-character bearer token is refused with 401 unauthorized",
    send: create(mockSpec(), { token: "t".repeat(600) }),
    status: 401,
    code: "unauthorized",
  },

  // GET status, results, events
  {
    name: "reading a run's status without a token is refused with 401",
    send: read("live", "", () => null),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "reading a run's status with its agent token answers 404, as if it did not exist",
    send: read("live", "", (r) => r.agentToken),
    status: 404,
    code: "run_not_found",
  },
  {
    name: "reading a run's status with another run's read token answers 404",
    send: read("live", "", () => fx.draining.readToken),
    status: 404,
    code: "run_not_found",
  },
  {
    name: "reading a run's status with wait=-1 is refused with 400 invalid_query",
    send: read("live", "?wait=-1"),
    status: 400,
    code: "invalid_query",
  },
  {
    name: "reading a run's status with wait=1e400 is refused with 400 invalid_query",
    send: read("live", "?wait=1e400"),
    status: 400,
    code: "invalid_query",
  },
  {
    name: "reading results with wait=61 is refused with 400 invalid_query",
    send: read("live", "/results?wait=61"),
    status: 400,
    code: "invalid_query",
  },
  {
    name: "reading results in an unknown format is refused with 400 unsupported_format",
    send: read("live", "/results?format=../../etc/passwd"),
    status: 400,
    code: "unsupported_format",
  },
  {
    name: "reading results under a run id in upper case answers 404",
    send: () => send("GET", `/v1/runs/${fx.live.id.toUpperCase()}/results`, { token: fx.live.readToken }),
    status: 404,
    code: "run_not_found",
  },
  {
    name: "reading results under a 65-character run id answers 404",
    send: () => send("GET", `/v1/runs/${fx.live.id}0/results`, { token: fx.live.readToken }),
    status: 404,
    code: "run_not_found",
  },
  {
    name: "opening a run's events without a token is refused with 401",
    send: read("live", "/events", () => null),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "opening a run's events with its agent token answers 404",
    send: read("live", "/events", (r) => r.agentToken),
    status: 404,
    code: "run_not_found",
  },

  // POST stop
  {
    name: "stopping a run with its read token is refused with 401 invalid_token",
    send: () => send("POST", path("live", "/stop"), { token: fx.live.readToken, json: {} }),
    status: 401,
    code: "invalid_token",
  },
  {
    name: "stopping a run with its agent token is refused with 401 invalid_token",
    send: () => send("POST", path("live", "/stop"), { token: fx.live.agentToken, json: {} }),
    status: 401,
    code: "invalid_token",
  },
  {
    name: "stopping a run with an unknown mode is refused with 400 invalid_spec",
    send: () => send("POST", path("live", "/stop"), { json: { mode: "kill" } }),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "stopping a run with an unknown field is refused with 400 unknown_field",
    send: () => send("POST", path("live", "/stop"), { json: { mode: "force", now: true } }),
    status: 400,
    code: "unknown_field",
  },
  {
    name: "stopping a run with a form-encoded body is refused with 415",
    send: () => send("POST", path("live", "/stop"), { raw: "mode=force", type: "application/x-www-form-urlencoded" }),
    status: 415,
    code: "unsupported_media_type",
  },
  // A malformed id never reaches a Durable Object. (A well-formed unknown id does, and is
  // answered 404 with nothing written: test/routes.test.ts.)
  {
    name: "stopping a run under a malformed id answers 404",
    send: () => send("POST", `/v1/runs/${"g".repeat(64)}/stop`, { json: {} }),
    status: 404,
    code: "run_not_found",
  },

  // POST agents (join)
  {
    name: "joining with a 129-character name is refused with 422 out_of_range",
    send: agent("live", "agents", () => ({ name: "n".repeat(129) })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "joining with a 65-character region is refused with 422 out_of_range",
    send: agent("live", "agents", () => ({ region: "r".repeat(65) })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "joining with a 129-character requestId is refused with 422 out_of_range",
    send: agent("live", "agents", () => ({ requestId: "j".repeat(129) })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "joining with a requestId containing a space is refused with 400 invalid_spec",
    send: agent("live", "agents", () => ({ requestId: "j 1" })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "joining with a numeric region is refused with 400 invalid_spec",
    send: agent("live", "agents", () => ({ region: 7 })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "joining with an unknown field is refused with 400 unknown_field",
    send: agent("live", "agents", () => ({ name: "x", admin: true })),
    status: 400,
    code: "unknown_field",
  },
  {
    name: "joining with a name carrying a terminal escape sequence is refused with 400 invalid_spec",
    send: agent("live", "agents", () => ({ name: "a\u001b]0;owned\u0007" })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "joining with a region carrying the C1 control CSI is refused with 400 invalid_spec",
    send: agent("live", "agents", () => ({ region: "weur\u009b2J" })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "joining with a __proto__ key is refused with 400 unknown_field",
    send: agentRaw("live", "agents", () => '{"name":"x","__proto__":{"admin":true}}'),
    status: 400,
    code: "unknown_field",
  },
  {
    name: "joining with a JSON body sent as text/plain is refused with 415",
    send: () => send("POST", path("live", "/agents"), { token: fx.live.agentToken, raw: '{"name":"x"}', type: "text/plain" }),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "joining with truncated JSON is refused with 400 invalid_json",
    send: agentRaw("live", "agents", () => '{"name":'),
    status: 400,
    code: "invalid_json",
  },
  {
    name: "joining a draining run is refused with 409 run_draining",
    send: agent("draining", "agents", () => ({})),
    status: 409,
    code: "run_draining",
  },
  {
    name: "joining a complete run is refused with 409 run_complete",
    send: agent("complete", "agents", () => ({})),
    status: 409,
    code: "run_complete",
  },
  {
    name: "joining a run that already has MAX_AGENTS agents is refused with 429 too_many_agents",
    send: agent("full", "agents", () => ({ name: "one-too-many" })),
    status: 429,
    code: "too_many_agents",
  },
  {
    name: "joining with the run's read token answers 404",
    send: agent(
      "live",
      "agents",
      () => ({}),
      (r) => r.readToken,
    ),
    status: 404,
    code: "run_not_found",
  },

  // POST leases
  {
    name: "asking for 1001 credits at once is refused with 422 out_of_range",
    send: agent("live", "leases", leaseBody({ want: 1001 })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "asking for a negative number of credits is refused with 422 out_of_range",
    send: agent("live", "leases", leaseBody({ want: -5 })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "asking for a fractional number of credits is refused with 400 invalid_spec",
    send: agent("live", "leases", leaseBody({ want: 1.5 })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "asking for credits with want as a string is refused with 400 invalid_spec",
    send: agent("live", "leases", leaseBody({ want: "5" })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "asking for 1e400 credits in the raw JSON is refused with 400 invalid_spec",
    send: agentRaw("live", "leases", (r) => `{"agentId":"${A(r)}","requestId":"hostile","want":1e400}`),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "asking for credits without an agentId is refused with 400 invalid_spec",
    send: agent("live", "leases", () => ({ requestId: "hostile", want: 1 })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "asking for credits with a space in the agentId is refused with 400 invalid_spec",
    send: agent("live", "leases", leaseBody({ agentId: "ag x" })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "asking for credits with a 129-character requestId is refused with 422 out_of_range",
    send: agent("live", "leases", leaseBody({ requestId: "r".repeat(129) })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "asking for credits as an agent that never joined is refused with 404 unknown_agent",
    send: agent("live", "leases", leaseBody({ agentId: "ag_nobody" })),
    status: 404,
    code: "unknown_agent",
  },
  {
    name: "asking for credits as an agent of another run is refused with 404 unknown_agent",
    send: agent("live", "leases", (r) => ({ ...leaseBody({})(r), agentId: fx.draining.agents[0] })),
    status: 404,
    code: "unknown_agent",
  },
  {
    name: "asking a draining run for credits is refused with 409 run_draining",
    send: agent("draining", "leases", leaseBody({})),
    status: 409,
    code: "run_draining",
  },
  {
    name: "asking a complete run for credits is refused with 409 run_complete",
    send: agent("complete", "leases", leaseBody({})),
    status: 409,
    code: "run_complete",
  },
  {
    name: "asking for credits with an empty body is refused with 400 invalid_json",
    send: agentRaw("live", "leases", () => ""),
    status: 400,
    code: "invalid_json",
  },

  // POST reports
  {
    name: "settling a seq that was never granted is refused with 422 unknown_seq",
    send: agent("live", "reports", reportBody({ results: [result({ seq: 1000 })] })),
    status: 422,
    code: "unknown_seq",
  },
  {
    name: "settling a seq granted to another agent is refused with 422 foreign_seq",
    send: agent("live", "reports", (r) => ({ ...reportBody({ results: [result({ seq: 0 })] })(r), agentId: B(r) })),
    status: 422,
    code: "foreign_seq",
  },
  {
    name: "a report with one good seq and one never granted is refused whole: the good seq stays outstanding",
    send: agent("live", "reports", reportBody({ results: [result({ seq: 0 }), result({ seq: 999 })] })),
    status: 422,
    code: "unknown_seq",
  },
  {
    name: "returning a seq that was never granted is refused with 422 unknown_seq",
    send: agent("live", "reports", reportBody({ returned: [1, 5000] })),
    status: 422,
    code: "unknown_seq",
  },
  {
    name: "settling a negative seq is refused with 422 out_of_range",
    send: agent("live", "reports", reportBody({ results: [result({ seq: -1 })] })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "settling a fractional seq is refused with 400 invalid_spec",
    send: agent("live", "reports", reportBody({ results: [result({ seq: 0.5 })] })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "settling a seq above 2^53 - 1 is refused with 422 out_of_range",
    send: agent("live", "reports", reportBody({ results: [result({ seq: 2 ** 53 })] })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "a latency of 1e400 in the raw JSON is refused with 400 invalid_spec",
    send: agentRaw(
      "live",
      "reports",
      (r) => `{"agentId":"${A(r)}","reportId":"hostile","inflight":0,"results":[{"seq":0,"ok":true,"latencyMs":1e400}]}`,
    ),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "a negative latency is refused with 422 out_of_range",
    send: agent("live", "reports", reportBody({ results: [result({ latencyMs: -1 })] })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "a result whose ok is a string is refused with 400 invalid_spec",
    send: agent("live", "reports", reportBody({ results: [result({ ok: "true" })] })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "a result with an unknown field is refused with 400 unknown_field",
    send: agent("live", "reports", reportBody({ results: [result({ weight: 100 })] })),
    status: 400,
    code: "unknown_field",
  },
  {
    name: "an error message longer than 1024 characters is refused with 422 out_of_range",
    send: agent(
      "live",
      "reports",
      reportBody({ results: [result({ ok: false, error: { code: "x", type: "y", message: "m".repeat(1025) } })] }),
    ),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "an error code longer than 64 characters is refused with 422 out_of_range",
    send: agent("live", "reports", reportBody({ results: [result({ ok: false, error: { code: "c".repeat(65), type: "y" } })] })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "an error message that clears the operator's screen is refused with 400 invalid_spec",
    send: agent("live", "reports", reportBody({ results: [result({ ok: false, error: { code: "x", type: "y", message: "\u001b[2J" } })] })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "an error code with a DEL character is refused with 400 invalid_spec",
    send: agent("live", "reports", reportBody({ results: [result({ ok: false, error: { code: "x\u007f", type: "y" } })] })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "an error type with a BEL character is refused with 400 invalid_spec",
    send: agent("live", "reports", reportBody({ results: [result({ ok: false, error: { code: "x", type: "\u0007" } })] })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "an integer error code above 999 is refused with 422 out_of_range",
    send: agent("live", "reports", reportBody({ results: [result({ ok: false, error: { code: 1000, type: "http" } })] })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "a report with 10,001 results is refused with 422 out_of_range",
    send: agent("live", "reports", reportBody({ results: many(10_001, (i) => result({ seq: i })) })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "a report returning 10,001 seqs is refused with 422 out_of_range",
    send: agent("live", "reports", reportBody({ returned: many(10_001, (i) => i) })),
    status: 422,
    code: "out_of_range",
  },
  {
    name: "a report without inflight is refused with 400 invalid_spec",
    send: agent("live", "reports", (r) => ({ agentId: A(r), reportId: "hostile", results: [] })),
    status: 400,
    code: "invalid_spec",
  },
  {
    name: "a report over MAX_BODY_BYTES with a Content-Length is refused with 413",
    send: agent(
      "live",
      "reports",
      reportBody({
        results: many(3, (i) => result({ seq: i, ok: false, error: { code: "e", type: "t", message: "m".repeat(1024) } })),
        pad: "x".repeat(MAX_BODY_BYTES),
      }),
    ),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "a streamed report over MAX_BODY_BYTES without a Content-Length is refused with 413",
    send: agentRaw("live", "reports", () => stream(MAX_BODY_BYTES + 64 * 1024)),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "a report to a complete run is refused with 409 run_complete",
    send: agent("complete", "reports", reportBody({ reportId: "late", results: [] })),
    status: 409,
    code: "run_complete",
  },
  {
    name: "a report from an agent that never joined is refused with 404 unknown_agent",
    send: agent("live", "reports", reportBody({ agentId: "ag_nobody" })),
    status: 404,
    code: "unknown_agent",
  },
  {
    name: "a report sent with the run's read token answers 404",
    send: agent("live", "reports", reportBody({}), (r) => r.readToken),
    status: 404,
    code: "run_not_found",
  },

  // Admin and listing
  {
    name: "starting a service drain without a token is refused with 401",
    send: () => send("POST", "/v1/admin/drain", { token: null }),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "starting a service drain with a run's read token is refused with 401 invalid_token",
    send: () => send("POST", "/v1/admin/drain", { token: fx.live.readToken }),
    status: 401,
    code: "invalid_token",
  },
  {
    name: "reading the drain state with a run's agent token is refused with 401 invalid_token",
    send: () => send("GET", "/v1/admin/drain", { token: fx.live.agentToken }),
    status: 401,
    code: "invalid_token",
  },
  {
    name: "resuming from a drain with a wrong token is refused with 401 invalid_token",
    send: () => send("DELETE", "/v1/admin/drain", { token: "nope" }),
    status: 401,
    code: "invalid_token",
  },
  {
    name: "listing active runs without a token is refused with 401",
    send: () => send("GET", "/v1/runs", { token: null }),
    status: 401,
    code: "unauthorized",
  },

  // /healthz, unknown routes
  {
    name: "POST /healthz answers 404 not_found",
    send: () => send("POST", "/healthz", { token: null, json: { x: 1 } }),
    status: 404,
    code: "not_found",
  },
  { name: "PUT on a run answers 404 not_found", send: () => send("PUT", path("live"), { json: {} }), status: 404, code: "not_found" },

  // /mock/*
  {
    name: "the mock refuses truncated JSON with 400 invalid_json",
    send: () => send("POST", "/mock/v1/chat/completions", { token: null, raw: '{"model":"mock","messages":[' }),
    status: 400,
    code: "invalid_json",
  },
  {
    name: "the mock refuses a chat completion without messages with 400 invalid_request",
    send: () => send("POST", "/mock/v1/chat/completions", { token: null, json: { model: "mock", messages: [] } }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "the mock refuses max_tokens of 1e400 with 400 invalid_request",
    send: () => send("POST", "/mock/v1/completions", { token: null, raw: '{"model":"mock","prompt":"hi","max_tokens":1e400}' }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "the mock refuses a TTFT header of 1e400 with 400 invalid_mock_header",
    send: () =>
      send("POST", "/mock/v1/chat/completions", {
        token: null,
        headers: { "x-mock-ttft-ms": "1e400" },
        json: { model: "mock", messages: [{ content: "hi" }] },
      }),
    status: 400,
    code: "invalid_mock_header",
  },
  {
    name: "the mock refuses a negative error-rate header with 400 invalid_mock_header",
    send: () =>
      send("POST", "/mock/v1/chat/completions", {
        token: null,
        headers: { "x-mock-error-rate": "-0.5" },
        json: { model: "mock", messages: [{ content: "hi" }] },
      }),
    status: 400,
    code: "invalid_mock_header",
  },
  {
    name: "the mock refuses a streamed body over its cap with 413",
    send: () => send("POST", "/mock/v1/chat/completions", { token: null, raw: stream(MOCK_MAX_BODY_BYTES + 64 * 1024) }),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "the mock refuses a 2 MiB body with a Content-Length with 413: nobody bills the operator for 8 MiB",
    send: () =>
      send("POST", "/mock/v1/chat/completions", {
        token: null,
        json: { model: "mock", messages: [{ content: "tok ".repeat(512 * 1024) }] },
      }),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "the mock refuses a __proto__ key with 400 unknown_field",
    send: () =>
      send("POST", "/mock/v1/chat/completions", { token: null, raw: '{"model":"mock","messages":[{"content":"hi"}],"__proto__":{}}' }),
    status: 400,
    code: "unknown_field",
  },
  {
    name: "the mock answers GET on the chat path with 404 not_found",
    send: () => send("GET", "/mock/v1/chat/completions", { token: null }),
    status: 404,
    code: "not_found",
  },
];

describe("hostile and malformed requests", () => {
  it("cover at least 40 cases across every route", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES)("$name; nothing changes", async ({ send: sendIt, status, code }) => {
    const before = await world();
    expectError(await sendIt(), status, code);
    expect(await world()).toEqual(before);
  });

  it("/healthz still answers 200 ok to a GET with a body-less junk header", async () => {
    const res = await send("GET", "/healthz", { token: "junk", headers: { "content-type": "application/json" } });
    expect(res.status).toBe(200);
    expect(res.text).toBe("ok");
  });
});

// ── Secrets ───────────────────────────────────────────────────────────────────

describe("secrets in a run", () => {
  const SECRETS = ["s3cr3t-apikey", "s3cr3t-header", "s3cr3t-query", "s3cr3t-path", "s3cr3t-sig", "s3cr3t-frag"];

  it("never appear in any response of any route, the webhook payload, or an error message", async () => {
    const spec = {
      target: {
        url: "https://api.example.org/v1/chat/completions?api_key=s3cr3t-query&v=1#s3cr3t-frag",
        model: "m",
        apiKey: "sk-s3cr3t-apikey",
        headers: { "x-api-secret": "s3cr3t-header" },
      },
      agents: { edge: 0 },
      stop: { requests: 1 },
      graceSeconds: 300,
      notify: { url: "https://hooks.example.com/services/s3cr3t-path?sig=s3cr3t-sig" },
    };
    const created = await send("POST", "/v1/runs", { json: spec });
    expect(created.status, created.text).toBe(201);
    const { id, readToken, agentToken, notifySecret } = created.body;
    const stub = env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(id));
    const webhooks: string[] = [];
    await runInDurableObject(stub, (instance: RunCoordinator) => {
      const t = Date.now();
      instance.now = () => t;
      instance.fetchOut = async (input, init) => {
        webhooks.push(await new Request(input, init).text());
        return new Response(null, { status: 204 });
      };
    });
    // The creator's own 201 carries its tokens once, by contract, and nothing else secret.
    const outputs: Array<[string, string]> = [
      ["201 create", created.text.replaceAll(readToken, "").replaceAll(agentToken, "").replaceAll(notifySecret, "")],
    ];
    const run = `/v1/runs/${id}`;
    const record = async (label: string, res: Promise<Sent>) => {
      const r = await res;
      outputs.push([label, r.text]);
      return r;
    };
    const readAll = async (phase: string) => {
      for (const token of [readToken, API_TOKEN]) {
        const who = token === API_TOKEN ? "api" : "read";
        await record(`${phase} status (${who})`, send("GET", run, { token }));
        for (const format of ["json", "aiperf", "csv"])
          await record(`${phase} results ${format} (${who})`, send("GET", `${run}/results?format=${format}`, { token }));
      }
      await record(`${phase} active runs`, send("GET", "/v1/runs"));
      await record(`${phase} drain state`, send("GET", "/v1/admin/drain"));
    };

    await readAll("running");
    // Agents get the target's secrets (they must call the target): the join answer is the one place.
    const joined = await send("POST", `${run}/agents`, { token: agentToken, json: { name: "a" } });
    expect(joined.text).toContain("sk-s3cr3t-apikey");
    const agentId = joined.body.agentId;
    const leased = await record("lease", send("POST", `${run}/leases`, { token: agentToken, json: { agentId, requestId: "r1", want: 1 } }));
    const seq = leased.body.credits[0].seq;
    await record(
      "report",
      send("POST", `${run}/reports`, {
        token: agentToken,
        json: { agentId, reportId: "p1", inflight: 0, results: [{ seq, ok: true, latencyMs: 9 }] },
      }),
    );
    await readAll("complete");
    const events = await record("events", send("GET", `${run}/events`, { token: readToken }));
    expect(events.text).toContain("event: complete");
    await record("stop", send("POST", `${run}/stop`, { json: { mode: "force" } }));
    await record(
      "late report (409)",
      send("POST", `${run}/reports`, { token: agentToken, json: { agentId, reportId: "p2", inflight: 0 } }),
    );
    // Refusals of specs that carry secrets.
    await record(
      "403 refusal",
      send("POST", "/v1/runs", { json: { ...spec, target: { ...spec.target, url: "https://evil.test/x?api_key=s3cr3t-query" } } }),
    );
    await record(
      "400 header refusal",
      send("POST", "/v1/runs", { json: { ...spec, target: { ...spec.target, headers: { "x-a": "s3cr3t-header\r\nx: y" } } } }),
    );
    await record(
      "400 userinfo refusal",
      send("POST", "/v1/runs", { json: { ...spec, target: { ...spec.target, url: "https://s3cr3t-path:s3cr3t-sig@api.example.org/" } } }),
    );
    await runDurableObjectAlarm(stub); // the alarm delivers the webhook
    expect(webhooks.length).toBeGreaterThan(0);
    for (const w of webhooks) outputs.push(["webhook payload", w]);

    for (const [label, text] of outputs) {
      for (const secret of [...SECRETS, API_TOKEN, readToken, agentToken, notifySecret]) {
        expect(text.includes(secret), `${label} contains ${secret}`).toBe(false);
      }
    }
    // The same outputs do show the redacted forms: the test looks where secrets would be.
    const results = outputs.find(([label]) => label === "complete results json (read)")![1];
    expect(results).toContain("api_key=REDACTED");
    expect(results).toContain('"x-api-secret":"REDACTED"');
  });
});

// ── Run creation rate limit ───────────────────────────────────────────────────

describe("run creation is rate-limited per API token", () => {
  let n = 0;
  /** An env with its own API token (so its own window) and the given limiter settings. */
  const limited = (overrides: Record<string, unknown>) => {
    const token = `rate-token-${++n}-${Math.random().toString(36).slice(2)}`;
    return { token, env: envWith({ API_TOKEN: token, RUN_RATE_LIMITER: undefined, ...overrides }) };
  };
  const createIn = (t: { token: string; env: Env }) => send("POST", "/v1/runs", { json: mockSpec(), token: t.token, env: t.env });
  const runCount = async () => (await listDurableObjectIds(env.RUN_COORDINATOR)).length;

  it("refuses the run over MAX_RUNS_PER_MINUTE with 429 rate_limited and a Retry-After, and creates nothing", async () => {
    const t = limited({ MAX_RUNS_PER_MINUTE: "2" });
    expect((await createIn(t)).status).toBe(201);
    expect((await createIn(t)).status).toBe(201);
    const before = await runCount();
    const res = await createIn(t);
    expectError(res, 429, "rate_limited");
    const retry = Number(res.headers.get("retry-after"));
    expect(Number.isInteger(retry) && retry >= 1 && retry <= 60, String(retry)).toBe(true);
    expect(await runCount()).toBe(before);
  });

  it("counts each API token in its own window", async () => {
    const a = limited({ MAX_RUNS_PER_MINUTE: "1" });
    const b = limited({ MAX_RUNS_PER_MINUTE: "1" });
    expect((await createIn(a)).status).toBe(201);
    expectError(await createIn(a), 429, "rate_limited");
    expect((await createIn(b)).status).toBe(201);
  });

  it("checks the token first: a wrong token gets 401, never 429", async () => {
    const t = limited({ MAX_RUNS_PER_MINUTE: "1" });
    expect((await createIn(t)).status).toBe(201);
    expectError(await send("POST", "/v1/runs", { json: mockSpec(), token: "wrong", env: t.env }), 401, "invalid_token");
  });

  it("asks the Rate Limiting binding when there is one, keyed by a hash of the token, never the token", async () => {
    const keys: string[] = [];
    const binding = { limit: async ({ key }: { key: string }) => (keys.push(key), { success: keys.length <= 1 }) };
    const t = limited({ MAX_RUNS_PER_MINUTE: "30", RUN_RATE_LIMITER: binding });
    expect((await createIn(t)).status).toBe(201);
    const res = await createIn(t);
    expectError(res, 429, "rate_limited");
    expect(res.headers.get("retry-after")).toBe("60");
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(keys[0]).not.toContain(t.token);
    expect(keys[0]).toMatch(/^run-create:[0-9a-f]{32}$/);
  });

  it("falls back to the in-memory window when the binding fails", async () => {
    const binding = { limit: async () => Promise.reject(new Error("unsupported")) };
    const t = limited({ MAX_RUNS_PER_MINUTE: "1", RUN_RATE_LIMITER: binding });
    expect((await createIn(t)).status).toBe(201);
    expectError(await createIn(t), 429, "rate_limited");
  });

  it("is off when MAX_RUNS_PER_MINUTE is 0: the binding is not even asked", async () => {
    let asked = 0;
    const binding = { limit: async () => (asked++, { success: false }) };
    const t = limited({ MAX_RUNS_PER_MINUTE: "0", RUN_RATE_LIMITER: binding });
    expect((await createIn(t)).status).toBe(201);
    expect(asked).toBe(0);
  });

  it("reads MAX_RUNS_PER_MINUTE defensively: anything but an integer from 0 falls back to 30", () => {
    expect([undefined, "", " ", "abc", "-1", "1.5", "1e9", 12].map(runsPerMinute)).toEqual([30, 30, 30, 30, 30, 30, 30, 30]);
    expect(["0", "1", "120"].map(runsPerMinute)).toEqual([0, 1, 120]);
  });

  it("keeps a fixed one-minute window per key and says when it reopens", () => {
    const w = new FixedWindow(60_000);
    for (let i = 0; i < 3; i++) expect(w.take("k", 3, 1_000 + i)).toEqual({ ok: true });
    expect(w.take("k", 3, 1_000)).toEqual({ ok: false, retryAfterS: 60 });
    expect(w.take("k", 3, 31_000)).toEqual({ ok: false, retryAfterS: 30 });
    expect(w.take("other", 3, 31_000)).toEqual({ ok: true });
    expect(w.take("k", 3, 61_000)).toEqual({ ok: true });
  });
});
