// Shared test plumbing: talk to the real Worker (in this workerd isolate) over HTTP,
// and drive a run's clock and alarm deterministically.

import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type { RunCoordinator } from "../durable/RunCoordinator";

export const API_TOKEN = "test-api-token";
const BASE = "https://edgeperf.test";

export interface CallResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function call<T = any>(
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; rawBody?: BodyInit; contentType?: string; headers?: Record<string, string> } = {},
): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? API_TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: BodyInit | undefined = opts.rawBody;
  if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
  const res = await exports.default.fetch(new Request(BASE + path, { method, headers, body }));
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* plain text */
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export function mockSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    target: { url: "builtin:mock" },
    // Tests drive runs by hand as external agents; edge agents have tests of their own.
    agents: { edge: 0 },
    load: { concurrency: 4 },
    stop: { requests: 40 },
    graceSeconds: 5,
    ...overrides,
  };
}

export interface TestRun {
  id: string;
  readToken: string;
  agentToken: string;
  stub: DurableObjectStub<RunCoordinator>;
  /** The run's fake clock, in ms since the epoch. */
  clock: number;
}

export async function createRun(overrides: Record<string, unknown> = {}): Promise<TestRun> {
  const res = await call("POST", "/v1/runs", { body: mockSpec(overrides) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const stub = env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(res.body.id));
  const run: TestRun = { id: res.body.id, readToken: res.body.readToken, agentToken: res.body.agentToken, stub, clock: Date.now() };
  await setClock(run, run.clock);
  return run;
}

/** Sets the coordinator's clock (again after an eviction, which resets it). */
export async function setClock(run: TestRun, t: number): Promise<void> {
  run.clock = t;
  await runInDurableObject(run.stub, (instance: RunCoordinator) => {
    instance.now = () => t;
  });
}

export async function advance(run: TestRun, ms: number): Promise<void> {
  await setClock(run, run.clock + ms);
}

/** Advances the clock and runs the alarm, as the runtime would at that time. */
export async function advanceAndAlarm(run: TestRun, ms: number): Promise<boolean> {
  await advance(run, ms);
  return runDurableObjectAlarm(run.stub);
}

export async function join(run: TestRun, name = "agent"): Promise<string> {
  const res = await call("POST", `/v1/runs/${run.id}/agents`, { token: run.agentToken, body: { name } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.agentId;
}

let counter = 0;
export const uid = (p: string) => `${p}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

export async function lease(run: TestRun, agentId: string, want: number, requestId = uid("req")) {
  return call("POST", `/v1/runs/${run.id}/leases`, { token: run.agentToken, body: { agentId, requestId, want } });
}

export function okResult(seq: number, extra: Record<string, unknown> = {}) {
  return { seq, ok: true, latencyMs: 100 + (seq % 10), ttftMs: 20, inputTokens: 550, outputTokens: 16, ...extra };
}

export async function report(
  run: TestRun,
  agentId: string,
  results: unknown[],
  opts: { returned?: number[]; inflight?: number; reportId?: string } = {},
) {
  return call("POST", `/v1/runs/${run.id}/reports`, {
    token: run.agentToken,
    body: { agentId, reportId: opts.reportId ?? uid("rep"), inflight: opts.inflight ?? 0, results, returned: opts.returned ?? [] },
  });
}

export async function status(run: TestRun) {
  return call("GET", `/v1/runs/${run.id}`, { token: run.readToken });
}

export function expectLedger(counts: Record<string, number>): void {
  const { granted = 0, returned = 0, completed = 0, failed = 0, abandoned = 0, outstanding = 0 } = counts;
  expect(granted).toBe(returned + completed + failed + abandoned + outstanding);
  expect(outstanding).toBeGreaterThanOrEqual(0);
}
