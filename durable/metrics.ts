// The run's metrics accumulator. Definitions, tags and unit strings follow AIPerf
// (ai-dynamo/aiperf, aiperf/metrics/types/*.py and common/enums/metric_enums.py):
//
// - request_latency, time_to_first_token, time_to_first_output_token,
//   time_to_second_token, inter_token_latency (ms), output/input sequence lengths and
//   reasoning_token_count (tokens) and output_token_throughput_per_user
//   (tokens/sec/user) are distributions over SUCCESSFUL requests only, each kept as a
//   DDSketch so storage does not grow with the request count. A request adds to a
//   distribution only what it reported: TTFO only if it produced a non-reasoning token,
//   reasoning_token_count only if it reasoned.
// - TTFT is the first token of any kind and OSL includes reasoning tokens, so
//   ITL = (latency - TTFT) / (OSL - 1) is the pace of every token, reasoning included;
//   only when TTFT is known and OSL >= 2.
// - output_token_throughput_per_user = 1 / ITL in seconds = 1000 / ITL(ms).
// - request_count = successes, error_request_count = failures (requests);
//   request_error_rate = 100 * failures / (successes + failures), unit "%".
// - request_throughput = successes / duration (requests/sec), output_token_throughput =
//   total output tokens / duration (tokens/sec), total_token_throughput = (total input
//   + total output tokens) / duration, benchmark_duration in "sec".
//
// Scalars with nothing to divide by are `null`, never NaN or Infinity, so the document
// always survives JSON.stringify.
//
// Once the run is complete nothing more can be added: `freeze` computes the final
// document once and drops the sketches, so what a finished run stores for its grace
// window is the same few kilobytes whether it settled a thousand requests or a million.

import { DISTRIBUTION_TAGS, METRICS } from "../contract/metric-catalog";
import type { DistributionTag, ScalarTag } from "../contract/metric-catalog";
import { DDSketch, type SketchData } from "./sketch";
import type { DistributionMetric, ErrorSummaryEntry, MetricsDocument, Percentile, ScalarMetric } from "../contract/results";
import { isGood } from "../contract/goodput";
import type { Goodput } from "../contract/goodput";
export type { DistributionMetric, ErrorSummaryEntry, MetricsDocument, Percentile, ScalarMetric };

export interface ReportedResult {
  seq: number;
  ok: boolean;
  latencyMs: number;
  ttftMs?: number;
  ttfoMs?: number;
  ttstMs?: number;
  inputTokens?: number;
  outputTokens?: number;
  reasoningTokens?: number;
  error?: { code: string; type: string; message?: string };
}

/**
 * Serialized RunMetrics: one sketch per distribution of the catalog and at most
 * MAX_ERROR_KINDS + 1 error entries; once frozen, the final document instead of the
 * sketches (`distributions` is then null).
 */
export interface RunMetricsData {
  completed: number;
  failed: number;
  distributions: Record<DistributionTag, SketchData> | null;
  errors: ErrorSummaryEntry[];
  final?: FinalMetrics;
  /** Good requests (goodput); absent when the spec sets no goodput limits. */
  good?: number;
}

interface FinalMetrics {
  durationMs: number;
  outputTokens: number;
  document: MetricsDocument;
}

const PERCENTILES: readonly (readonly [Percentile, number])[] = [
  ["p1", 0.01],
  ["p5", 0.05],
  ["p10", 0.1],
  ["p25", 0.25],
  ["p50", 0.5],
  ["p75", 0.75],
  ["p90", 0.9],
  ["p95", 0.95],
  ["p99", 0.99],
  ["p999", 0.999],
];

// Distinct (code, type) pairs kept; later new pairs are counted under other/other, so a
// hostile agent inventing error codes cannot grow the stored document.
const MAX_ERROR_KINDS = 64;
const MAX_LABEL_LENGTH = 64;
const OTHER = "other";
const OTHER_KEY = JSON.stringify([OTHER, OTHER]);
// ~31 years in ms, or a trillion tokens: far above anything measured, and low enough
// that sums over 2^53 samples stay finite (the sketches refuse to overflow mid-update).
const MAX_MEASURE = 1e12;
// Below a nanosecond an ITL is clock noise; 1000 / ITL would be meaningless (and AIPerf
// divides by zero at ITL = 0), so tokens/sec/user is skipped for such requests.
const MIN_ITL_FOR_RATE_MS = 1e-6;

export class RunMetrics {
  private successes = 0;
  private failures = 0;
  /** Successful requests meeting the spec's goodput limits; null when the spec sets none. */
  private good: number | null = null;
  private sketches = newSketches();
  private errorCounts = new Map<string, ErrorSummaryEntry>();
  private final: FinalMetrics | null = null;

  static empty(): RunMetrics {
    return new RunMetrics();
  }

  get completed(): number {
    return this.successes;
  }

  get failed(): number {
    return this.failures;
  }

  outputTokens(): number {
    return this.final ? this.final.outputTokens : this.sketches.output_sequence_length.sum;
  }

  get frozen(): boolean {
    return this.final !== null;
  }

  /**
   * Computes the final document for a run whose measured phase lasted `benchmarkDurationMs`
   * and drops the sketches: from now on `document()` answers that document and nothing
   * can be added. Freezing twice keeps the first.
   */
  freeze(benchmarkDurationMs: number): void {
    if (this.final) return;
    this.final = { durationMs: benchmarkDurationMs, outputTokens: this.outputTokens(), document: this.document(benchmarkDurationMs) };
    this.sketches = newSketches();
  }

  /** Records one settled, measured (non-warmup) request. Throws RangeError before changing anything. */
  /** `goodput`: the spec's limits (contract/goodput.ts), when it sets any. */
  add(r: ReportedResult, goodput?: Goodput): void {
    if (this.final) throw new Error("RunMetrics: the run's metrics are final.");
    if (goodput) this.good ??= 0;
    if (!r.ok) {
      this.failures += 1;
      this.countError(r.error?.code, r.error?.type, 1);
      return;
    }
    const latency = measure(r.latencyMs, "latencyMs");
    const ttft = r.ttftMs === undefined ? undefined : measure(r.ttftMs, "ttftMs");
    const ttfo = r.ttfoMs === undefined ? undefined : measure(r.ttfoMs, "ttfoMs");
    const ttst = r.ttstMs === undefined ? undefined : measure(r.ttstMs, "ttstMs");
    const reasoning = r.reasoningTokens === undefined ? undefined : integer(r.reasoningTokens, "reasoningTokens", MAX_MEASURE);
    const osl = r.outputTokens === undefined ? undefined : integer(r.outputTokens, "outputTokens", MAX_MEASURE);
    const isl = r.inputTokens === undefined ? undefined : integer(r.inputTokens, "inputTokens", MAX_MEASURE);
    // AIPerf rejects a first token after the last one; we drop only the derived value.
    const itl = ttft !== undefined && osl !== undefined && osl >= 2 && latency >= ttft ? (latency - ttft) / (osl - 1) : undefined;

    this.successes += 1;
    const s = this.sketches;
    s.request_latency.add(latency);
    if (ttft !== undefined) s.time_to_first_token.add(ttft);
    if (ttfo !== undefined) s.time_to_first_output_token.add(ttfo);
    if (ttst !== undefined) s.time_to_second_token.add(ttst);
    if (reasoning !== undefined) s.reasoning_token_count.add(reasoning);
    if (osl !== undefined) s.output_sequence_length.add(osl);
    if (isl !== undefined) s.input_sequence_length.add(isl);
    if (itl !== undefined) {
      s.inter_token_latency.add(itl);
      if (itl >= MIN_ITL_FOR_RATE_MS) s.output_token_throughput_per_user.add(1000 / itl);
    }
    if (goodput) {
      const values = {
        request_latency: latency,
        time_to_first_token: ttft,
        time_to_first_output_token: ttfo,
        time_to_second_token: ttst,
        inter_token_latency: itl,
        output_token_throughput_per_user: itl !== undefined && itl >= MIN_ITL_FOR_RATE_MS ? 1000 / itl : undefined,
      };
      if (isGood(Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)), goodput)) this.good = (this.good ?? 0) + 1;
    }
  }

  /** The metrics document; once frozen, the final one whatever the duration given. */
  document(benchmarkDurationMs: number): MetricsDocument {
    if (this.final) return structuredClone(this.final.document);
    const seconds = Number.isFinite(benchmarkDurationMs) && benchmarkDurationMs > 0 ? benchmarkDurationMs / 1000 : null;
    const settled = this.successes + this.failures;
    const osl = this.sketches.output_sequence_length;
    const isl = this.sketches.input_sequence_length;
    // How each scalar of the catalog is computed; the distributions are the sketches.
    const scalars: Record<ScalarTag, number | null> = {
      request_throughput: seconds !== null && settled > 0 ? this.successes / seconds : null,
      // Token throughput is unknown, not zero, when no success reported a token count.
      output_token_throughput: seconds !== null && osl.count > 0 ? osl.sum / seconds : null,
      // AIPerf's (total ISL + total OSL) / duration; unknown when neither was reported.
      total_token_throughput: seconds !== null && osl.count + isl.count > 0 ? (isl.sum + osl.sum) / seconds : null,
      request_count: this.successes,
      error_request_count: this.failures,
      good_request_count: this.good,
      goodput: seconds !== null && this.good !== null ? this.good / seconds : null,
      request_error_rate: settled > 0 ? (100 * this.failures) / settled : null,
      benchmark_duration: seconds,
    };
    const doc = {} as MetricsDocument;
    for (const def of METRICS) {
      doc[def.tag] =
        def.kind === "distribution" ? distribution(this.sketches[def.tag], def.unit) : { unit: def.unit, avg: scalars[def.tag] };
    }
    return doc;
  }

  /** Most frequent first; ties by code then type so the order is stable. */
  errors(): ErrorSummaryEntry[] {
    const order = (e: ErrorSummaryEntry) => `${e.code}\u0000${e.type}`;
    return [...this.errorCounts.values()]
      .map((e) => ({ ...e }))
      .sort((a, b) => b.count - a.count || (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  }

  toJSON(): RunMetricsData {
    if (this.final)
      return {
        completed: this.successes,
        failed: this.failures,
        distributions: null,
        errors: this.errors(),
        final: structuredClone(this.final),
      };
    const distributions = {} as Record<DistributionTag, SketchData>;
    for (const tag of DISTRIBUTION_TAGS) distributions[tag] = this.sketches[tag].toJSON();
    return {
      completed: this.successes,
      failed: this.failures,
      distributions,
      errors: this.errors(),
      ...(this.good !== null ? { good: this.good } : {}),
    };
  }

  /** Rebuilds from `toJSON` output, which only the coordinator writes (agents report single results). */
  static fromJSON(d: RunMetricsData): RunMetrics {
    const m = new RunMetrics();
    m.successes = d.completed;
    m.failures = d.failed;
    m.good = d.good ?? null;
    if (d.final) m.final = d.final;
    else if (d.distributions) {
      // A run stored before a metric existed (a deploy mid-run) has no sketch for it yet.
      for (const tag of DISTRIBUTION_TAGS) {
        const data = d.distributions[tag] as SketchData | undefined;
        if (data) m.sketches[tag] = DDSketch.fromJSON(data);
      }
    }
    for (const e of d.errors) m.countError(e.code, e.type, e.count);
    return m;
  }

  private countError(rawCode: unknown, rawType: unknown, n: number): void {
    let code = typeof rawCode === "string" ? truncate(rawCode) : "unknown";
    let type = typeof rawType === "string" ? truncate(rawType) : "unknown";
    let key = JSON.stringify([code, type]);
    // other/other never counts against the bound, so the result does not depend on the
    // order entries arrive in (fromJSON replays them sorted by count).
    const kinds = this.errorCounts.size - (this.errorCounts.has(OTHER_KEY) ? 1 : 0);
    if (key !== OTHER_KEY && !this.errorCounts.has(key) && kinds >= MAX_ERROR_KINDS) {
      code = type = OTHER;
      key = OTHER_KEY;
    }
    const entry = this.errorCounts.get(key);
    if (entry) entry.count += n;
    else this.errorCounts.set(key, { code, type, count: n });
  }
}

function newSketches(): Record<DistributionTag, DDSketch> {
  return Object.fromEntries(DISTRIBUTION_TAGS.map((tag) => [tag, new DDSketch()])) as Record<DistributionTag, DDSketch>;
}

function distribution(s: DDSketch, unit: string): DistributionMetric {
  const percentiles = Object.fromEntries(PERCENTILES.map(([field, q]) => [field, s.quantile(q) ?? null]));
  return {
    unit,
    avg: s.mean ?? null,
    min: s.min ?? null,
    max: s.max ?? null,
    sum: s.count > 0 ? s.sum : null,
    std: s.std ?? null,
    count: s.count,
    ...(percentiles as Record<Percentile, number | null>),
  };
}

function measure(value: unknown, name: string): number {
  if (typeof value !== "number" || !(value >= 0 && value <= MAX_MEASURE)) {
    throw new RangeError(`${name} must be a number in [0, ${MAX_MEASURE}], got ${String(value)}`);
  }
  return value;
}

function integer(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > max) {
    throw new RangeError(`${name} must be an integer in [0, ${max}], got ${String(value)}`);
  }
  return value as number;
}

// Cut at a code-unit boundary, never leaving half of a surrogate pair behind.
function truncate(s: string): string {
  return s.length <= MAX_LABEL_LENGTH ? s : s.slice(0, MAX_LABEL_LENGTH).replace(/[\uD800-\uDBFF]$/, "");
}
