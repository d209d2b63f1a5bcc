// Bodies of the agent wire protocol v1 (README, "Agents and the wire protocol") and of POST /stop. One schema per
// body; the types come from the schemas.

import { z } from "zod";
import type { DatasetType } from "./dataset";
import type { RunSpec } from "./spec";

const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");
const nonNegInt = (max: number) => z.number().int().min(0).max(max);
const ms = z.number().min(0).max(1e9);

// Agent-supplied strings are shown to operators (status, dashboard, the CLI's terminal),
// where ESC and the other C0 and C1 controls could rewrite the screen: refused at the door.
const CONTROLS = /^[^\x00-\x1f\x7f-\x9f]*$/;
const text = (min: number, max: number) => z.string().min(min).max(max).regex(CONTROLS, "must not contain control characters");

// AIPerf's error model carries the HTTP status as an integer code; the coordinator keys
// error kinds by string, so an integer is recorded as its decimal string.
const errorCode = z
  .union([text(1, 64), z.number().int().min(0).max(999)], {
    error: (iss) => (iss.code === "invalid_union" ? "must be a string or an integer" : undefined),
  })
  .transform(String);

export const MAX_RESULTS_PER_REPORT = 10_000;
export const MAX_LEASE_WANT = 1_000;
/**
 * The deepest lease depth an agent may ask for, in shares: what a dead agent can strand
 * is its share plus this many. Only an agent on a target much faster than its coordinator
 * round trip gets near it (the depth asks for about half a second of sends: agent/policy.ts), and
 * there each call's fixed cost is what a deeper window saves (docs/BENCHMARKS.md).
 */
export const MAX_DEPTH_SHARES = 64;

export const JoinBody = z.strictObject({
  name: text(1, 128).optional(),
  region: text(1, 64).optional(),
  // Extension: the Cloudflare colo the agent runs in (edge agents; "local" in wrangler dev).
  colo: text(1, 16).optional(),
  // Extension: how often the clock the agent measures with ticks, in ms: 0 for a fine
  // clock (the Node agent), 1 for workerd's (edge agents, which spread their durations
  // over it: docs/ARCHITECTURE.md, "Measuring on a millisecond clock").
  clockTickMs: z.number().min(0).max(1000).optional(),
  // Extension: a join retried with the same requestId (its answer was lost) answers the
  // agent it created instead of creating a second one.
  requestId: id.optional(),
});
export type JoinBody = z.infer<typeof JoinBody>;

export const LeaseBody = z.strictObject({
  agentId: id,
  requestId: id,
  want: z.number().int().min(1).max(MAX_LEASE_WANT),
  // Extension: lets the coordinator see the agent has applied a smaller share.
  inflight: nonNegInt(1_000_000).optional(),
  // Extension: the lease depth, credits the agent wants in hand beyond its share so the
  // next answer arrives before it runs dry (README, "Agents and the wire protocol"). The
  // coordinator caps what the agent may hold at share + depth, depth within 1–MAX_DEPTH_SHARES shares.
  depth: nonNegInt(1_000_000).optional(),
  // Extension, multi_turn datasets: how many new sessions the agent wants to start. The
  // answer's `sessions` are their items, numbered across the run (README, "Datasets and workloads").
  newSessions: nonNegInt(MAX_LEASE_WANT).optional(),
});
export type LeaseBody = z.infer<typeof LeaseBody>;

export const ResultItem = z.strictObject({
  seq: nonNegInt(Number.MAX_SAFE_INTEGER),
  ok: z.boolean(),
  latencyMs: ms,
  ttftMs: ms.optional(),
  inputTokens: nonNegInt(10_000_000).optional(),
  outputTokens: nonNegInt(10_000_000).optional(),
  // Extensions for reasoning models (AIPerf's definitions; README, "Reading the metrics").
  // ttfoMs: the first non-reasoning token (answer or tool call) − start. ttstMs: the
  // second token's arrival − the first's. reasoningTokens: of outputTokens, how many
  // were reasoning.
  ttfoMs: ms.optional(),
  ttstMs: ms.optional(),
  reasoningTokens: nonNegInt(10_000_000).optional(),
  // Extension: when the request ended, ms after the run's start on the coordinator's
  // clock (as the agent estimates it). Places the result in the time series.
  endMs: z.number().min(0).max(1e10).optional(),
  // Extension, rate mode: how late the request was sent after its credit's intended
  // time (ms). The coordinator reports its p50 and p99 as the run's schedule lag.
  lagMs: ms.optional(),
  error: z
    .strictObject({
      code: errorCode,
      type: text(1, 64),
      message: text(0, 1024).optional(),
    })
    .optional(),
});
export type ResultItem = z.infer<typeof ResultItem>;

export const ReportBody = z.strictObject({
  agentId: id,
  reportId: id,
  inflight: nonNegInt(1_000_000),
  results: z.array(ResultItem).max(MAX_RESULTS_PER_REPORT).default([]),
  returned: z.array(nonNegInt(Number.MAX_SAFE_INTEGER)).max(MAX_RESULTS_PER_REPORT).default([]),
  // Extension: the agent restarted and lost track of what it held. Every credit it still
  // holds (and this report does not settle) is counted failed with `agent_restarted`:
  // its request may have reached the target, so it is never sent again.
  restarted: z.boolean().optional(),
  // Extension, multi_turn datasets: sessions started, completed and cut short since the
  // agent's previous report (README, "Datasets and workloads"). Counted once per reportId.
  sessions: z.strictObject({ started: nonNegInt(1_000_000), completed: nonNegInt(1_000_000), cut: nonNegInt(1_000_000) }).optional(),
  // Extension, multi_turn: new sessions wanted, as in a lease (reports go on during the drain, leases do not).
  newSessions: nonNegInt(MAX_LEASE_WANT).optional(),
});
export type ReportBody = z.infer<typeof ReportBody>;

/** Extension: a report, then a lease, in one call (POST /v1/runs/:id/report-lease); each keeps its own idempotency key. */
export const ReportLeaseBody = z.strictObject({ report: ReportBody, lease: LeaseBody });

export const StopBody = z.strictObject({
  mode: z.enum(["graceful", "force"]).default("graceful"),
});

// Answers (the coordinator's side of the protocol).

export interface JoinAnswer {
  agentId: string;
  leaseTtlMs: number;
  reportIntervalMs: number;
  serverTime: number;
  spec: RunSpec;
  concurrency: number;
  stop: boolean;
  /** Extension: with workload.dataset, its type (multi_turn runs sessions; README, "Datasets and workloads"). */
  datasetType?: DatasetType;
}

export interface LeaseAnswer {
  leaseId: string;
  /** `item` (extension): the dataset item this credit sends, with workload.dataset (README, "Datasets and workloads"). */
  credits: Array<{ seq: number; at?: number; warmup?: boolean; item?: number }>;
  /** Extension, multi_turn: the items of the new sessions asked for (`newSessions` in the body). */
  sessions?: number[];
  concurrency: number;
  expiresInMs: number;
  stop: boolean;
  /** Extension: with stop, true when held credits should still be sent (the budget was fully granted). */
  finishLeased: boolean;
  /** Extension: the coordinator's clock (epoch ms) and the run's start on it, for `at` and offset estimates. */
  serverTime: number;
  runStartedAt: number | null;
}

export interface ReportAnswer {
  accepted: number;
  duplicates: number;
  /** Extension, multi_turn: the items of the new sessions asked for (`newSessions`). */
  sessions?: number[];
  stop: boolean;
  finishLeased: boolean;
  concurrency: number;
  serverTime: number;
}

/**
 * The answer to POST /v1/runs/:id/report-lease: the report's answer (a refused report is
 * answered as the error it is, and the lease is not tried), and the lease's answer or its
 * refusal as a value, so the report's answer survives a refused lease.
 */
export interface ReportLeaseAnswer {
  report: ReportAnswer;
  lease: LeaseAnswer | { error: { status: number; code: string; message: string } };
}
