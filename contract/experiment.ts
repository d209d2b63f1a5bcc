// Experiments (README, "Experiments"): a sweep runs one run per level of concurrency or
// rate, one after another; a search finds the highest level at which every SLO holds.
// This module is the request as the API accepts it (one strict zod schema, its types
// derived from it), the documents an experiment answers with, and the level specs: a
// level is the base RunSpec with its load's concurrency or rate replaced, validated by
// parseRunSpec like any run's, so a level passes exactly the checks and caps a run does.
// The search itself is a pure function in experiment-search.ts.

import { z } from "zod";
import type { Config } from "./config";
import { StatusError } from "./errors";
import type { Ledger, Outcome, Phase, StopReason, ThresholdResult } from "./results";
import { parseRunSpec, parseThreshold, publicSpec } from "./spec";
import { zodToStatus } from "./spec-errors";
import type { RunSpec } from "./spec";
import { MAX_THRESHOLDS } from "./thresholds";
import { MAX_SEARCH_LEVELS, MIN_RATE } from "./experiment-search";
import type { Over, SearchEnd } from "./experiment-search";

export type { Over, SearchEnd };

/** Levels an experiment may run: a sweep's list, and the most a search may try. */
export const MAX_LEVELS = MAX_SEARCH_LEVELS;
/**
 * Every level's run serves its final results at least this long, whatever
 * base.graceSeconds says: the experiment reads them from its alarm, which may come late
 * (a retry after a failed call waits up to 30 s), and a run wiped first has lost them.
 */
export const LEVEL_MIN_GRACE_SECONDS = 60;
// Messages in spec.ts's style: the whole allowed range, never the input value.
const rangeText = (kind: string, min: number) => `must be ${kind} >= ${min}`;
const intLevel = z
  .number({ error: rangeText("an integer", 1) })
  .refine(Number.isInteger, { error: rangeText("an integer", 1), abort: true })
  .min(1, { error: rangeText("an integer", 1) });
const rateLevel = z.number({ error: rangeText("a number", MIN_RATE) }).min(MIN_RATE, { error: rangeText("a number", MIN_RATE) });

const LevelsSchema = z
  .strictObject({
    concurrency: z.array(intLevel).min(1).max(MAX_LEVELS).optional(),
    rate: z.array(rateLevel).min(1).max(MAX_LEVELS).optional(),
  })
  .transform((l, ctx): { over: Over; values: number[] } => {
    const fail = (message: string) => {
      ctx.addIssue({ code: "custom", path: [], message, params: { code: "invalid_experiment" } });
      return z.NEVER;
    };
    if (l.concurrency !== undefined && l.rate !== undefined) return fail("must have either concurrency or rate, not both");
    if (l.concurrency !== undefined) return { over: "concurrency", values: l.concurrency };
    if (l.rate !== undefined) return { over: "rate", values: l.rate };
    return fail('must have concurrency or rate, e.g. {"concurrency": [1, 2, 4, 8]}');
  });

/** One SLO as written, split into a threshold key and its comparison ("<200"). */
export interface Slo {
  /** As written, without spaces: the verdict's `expr`. */
  expr: string;
  key: string;
  comparison: string;
}

const SLO_OP = /(<=|>=|==|<|>)/;

/** `time_to_first_token.p95<200` in the thresholds grammar; the error names the field. */
export function parseSlo(raw: string, field: string): Slo {
  // A region tag may hold any character but braces: the operator comes after it.
  const from = raw.lastIndexOf("}") + 1;
  const m = SLO_OP.exec(raw.slice(from));
  if (!m) throw new StatusError(400, "invalid_threshold", `${field}: expected METRIC.STAT<N, e.g. "time_to_first_token.p95<200".`);
  const at = from + m.index;
  const key = raw.slice(0, at).trim();
  const comparison = raw.slice(at).trim();
  try {
    parseThreshold(key, comparison);
  } catch (e) {
    if (!(e instanceof StatusError)) throw e;
    // parseThreshold names its RunSpec field ("thresholds.x: …"); here the field is the SLO.
    throw new StatusError(e.status, e.code, `${field}: ${e.message.replace(/^thresholds(?:\.[^:]*)?: /, "")}`);
  }
  return { expr: `${key}${comparison.replace(/\s+/g, "")}`, key, comparison };
}

const SearchSchema = z
  .strictObject({
    over: z.enum(["concurrency", "rate"]),
    slo: z.array(z.string().min(1).max(512)).min(1).max(MAX_THRESHOLDS),
    min: rateLevel,
    max: rateLevel,
  })
  .superRefine((s, ctx) => {
    const fail = (path: PropertyKey[], message: string, error?: StatusError) =>
      ctx.addIssue({ code: "custom", path, message, params: error ? { error } : { code: "invalid_experiment" } });
    if (s.over === "concurrency") {
      for (const k of ["min", "max"] as const) {
        if (!Number.isInteger(s[k]) || s[k] < 1) return fail([k], `${rangeText("an integer", 1)} when search.over is "concurrency"`);
      }
    }
    if (s.max < s.min) return fail(["max"], "must be at least search.min");
    s.slo.forEach((raw, i) => {
      try {
        parseSlo(raw, `search.slo[${i}]`);
      } catch (e) {
        if (!(e instanceof StatusError)) throw e;
        fail(["slo", i], e.message, e);
      }
    });
  });

const ExperimentSchema = z
  .strictObject({
    base: z.record(z.string(), z.unknown()),
    levels: LevelsSchema.optional(),
    search: SearchSchema.optional(),
    graceSeconds: z
      .number({ error: "must be an integer from 0 to 300" })
      .refine(Number.isInteger, { error: "must be an integer from 0 to 300", abort: true })
      .min(0, { error: "must be an integer from 0 to 300" })
      .max(300, { error: "must be an integer from 0 to 300" })
      .optional(),
  })
  .superRefine((x, ctx) => {
    if ((x.levels === undefined) === (x.search === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [],
        message: "must have either levels (a sweep) or search (capacity under an SLO), not both and not neither",
        params: { code: "invalid_experiment" },
      });
    }
  });

export type ExperimentRequest = z.output<typeof ExperimentSchema>;

export interface SearchPlan {
  over: Over;
  slo: Slo[];
  min: number;
  max: number;
}

/** A validated experiment: what the Experiment object stores and runs. */
export interface ExperimentPlan {
  kind: "sweep" | "search";
  over: Over;
  /** A sweep's levels, in order; empty for a search (its levels are chosen as it goes). */
  levels: number[];
  search: SearchPlan | null;
  /** The base RunSpec as sent: each level is parsed from it when it starts, against the caps of that moment. */
  base: Record<string, unknown>;
  /** The base as it may be shown (publicSpec of a level's spec, without the varied field): the summary's `base`. */
  publicBase: unknown;
  graceMs: number;
}

/** A level's spec as it may be shown, without the field each level sets. */
function publicBaseOf(spec: RunSpec, over: Over): unknown {
  const shown = publicSpec(spec);
  const { [over]: _varied, ...load } = shown.load as Record<string, unknown>;
  return { ...shown, load };
}

/** The body a level's run is parsed from: the base with its load's `over` set to the level. */
export function levelSpecInput(base: Record<string, unknown>, over: Over, level: number): Record<string, unknown> {
  const load = typeof base.load === "object" && base.load !== null && !Array.isArray(base.load) ? base.load : {};
  return { ...base, load: { ...load, [over]: level } };
}

/**
 * A level's RunSpec, or the run spec's own error with the field named as the experiment's
 * body has it: the level's value as `label` (`levels.concurrency[2]`, `search.max`), any
 * other field under `base.`. Its runs serve their results at least LEVEL_MIN_GRACE_SECONDS.
 */
export function parseLevelSpec(base: Record<string, unknown>, over: Over, level: number, label: string, cfg: Config): RunSpec {
  let spec: RunSpec;
  try {
    spec = parseRunSpec(levelSpecInput(base, over, level), cfg);
  } catch (e) {
    if (!(e instanceof StatusError)) throw e;
    const own = `load.${over}`;
    const message = e.message.startsWith(own) ? `${label}${e.message.slice(own.length)}` : `base.${e.message}`;
    throw new StatusError(e.status, e.code, message, e.headers);
  }
  if (spec.notify) {
    throw new StatusError(
      400,
      "invalid_experiment",
      "base.notify is not supported in an experiment: each level's run would post its own results.",
    );
  }
  spec.graceSeconds = Math.max(spec.graceSeconds, LEVEL_MIN_GRACE_SECONDS);
  return spec;
}

/**
 * The experiment body, validated at the door: the schema, then every level's spec (a
 * sweep's every level; a search's min and max, between which caps cannot be crossed).
 */
export function parseExperiment(body: unknown, cfg: Config): ExperimentPlan {
  const parsed = ExperimentSchema.safeParse(body);
  if (!parsed.success) throw zodToStatus(parsed.error);
  const x = parsed.data;
  const graceMs = (x.graceSeconds ?? cfg.graceSecondsDefault) * 1000;
  if (x.levels) {
    const { over, values } = x.levels;
    const specs = values.map((level, i) => parseLevelSpec(x.base, over, level, `levels.${over}[${i}]`, cfg));
    return { kind: "sweep", over, levels: values, search: null, base: x.base, publicBase: publicBaseOf(specs[0]!, over), graceMs };
  }
  const s = x.search!;
  const first = parseLevelSpec(x.base, s.over, s.min, "search.min", cfg);
  parseLevelSpec(x.base, s.over, s.max, "search.max", cfg);
  const slo = s.slo.map((raw, i) => parseSlo(raw, `search.slo[${i}]`));
  return {
    kind: "search",
    over: s.over,
    levels: [],
    search: { over: s.over, slo, min: s.min, max: s.max },
    base: x.base,
    publicBase: publicBaseOf(first, s.over),
    graceMs,
  };
}

// ── The documents ─────────────────────────────────────────────────────────────

/** A level's key figures under their AIPerf tags, with the tag's unit (README, "Experiments"). */
export type KeyMetrics = Record<string, { unit: string } & Record<string, number | null | string>>;

export type LevelStatus = "pending" | "starting" | "running" | "complete" | "cancelled" | "skipped" | "error";

/** One level as the summary shows it; complete and cancelled levels keep their run's final figures. */
export interface LevelView {
  level: number;
  status: LevelStatus;
  runId: string | null;
  /** The run's own createdAt and completedAt (its coordinator's clock). */
  createdAt: string | null;
  completedAt: string | null;
  outcome: Outcome | null;
  stopReason: StopReason | null;
  counts: Ledger | null;
  metrics: KeyMetrics | null;
  /** The run's own thresholds (base.thresholds). */
  verdicts: ThresholdResult[];
  /** Codes of the run's warnings (all_requests_failed, generator_bound). */
  warnings: string[];
  /** Why the level has no results: its run could not be created, or was wiped before it was read. */
  error: { code: string; message: string } | null;
}

export interface SearchTrial {
  level: number;
  ok: boolean;
  verdicts: ThresholdResult[];
  runId: string | null;
}

export interface SearchView {
  over: Over;
  slo: string[];
  min: number;
  max: number;
  tried: SearchTrial[];
  /** The highest level at which every SLO held (null when even min fails, or none was tried). */
  best: number | null;
  /** Why the search ended (`stopped`: POST /stop; `level_error`: a level's run could not be created); null while it goes on. */
  end: SearchEnd | "stopped" | "level_error" | null;
}

export type ExperimentOutcome = "completed" | "stopped" | "failed";
/** done: every level ran (or the search ended); user: POST /stop; level_error: a level's run could not be created. */
export type ExperimentStopReason = "done" | "user" | "level_error";

export interface ExperimentSummary {
  id: string;
  kind: "sweep" | "search";
  over: Over;
  phase: Phase;
  status: "running" | "complete" | "cancelled";
  outcome: ExperimentOutcome | null;
  stopReason: ExperimentStopReason | null;
  createdAt: string;
  startedAt: string | null;
  drainStartedAt: string | null;
  completedAt: string | null;
  wipeAt: string | null;
  serverTime: string;
  /** The base RunSpec as every level's run has it (secrets redacted), without the field the levels set. */
  base: unknown;
  /** The level under way, if any. */
  current: { level: number; runId: string | null } | null;
  levels: LevelView[];
  search: SearchView | null;
}

export interface ExperimentResults extends ExperimentSummary {
  final: boolean;
}
