// The load the run really delivered, beside the load it asked for (README, "Delivered
// load"): a run whose generator could not keep up says so in its results instead of
// reporting the generator's own queueing as the target's latency.
//
// - concurrency.mean: the time-weighted mean of requests in flight over the measured
//   period. By Little's law that is the summed time every settled measured request spent
//   in flight (its latency, failures included) divided by benchmark_duration.
// - rate.achieved: settled measured requests per second of benchmark_duration.
// - scheduleLagMs (rate mode): how late each request was sent after its credit's intended
//   time, as the agents measured it (`lagMs` of a result), kept as a sketch.
//
// Stored in the coordinator's `meta` row "delivered" beside the metrics, in the same
// transactions; frozen at completion like them, so a finished run stores a few numbers.

import type { RunConfig } from "../contract/run-plan";
import type { Delivered, Warning } from "../contract/results";
import { DDSketch } from "./sketch";
import type { SketchData } from "./sketch";

export interface DeliveredData {
  /** Summed latency of settled measured requests, ms. */
  busyMs: number;
  settled: number;
  /** null once frozen. */
  lag: SketchData | null;
  final?: { lagP50: number | null; lagP99: number | null };
}

/** Below these a run's load was not what it asked for (README, "Warnings"). */
export const GENERATOR_BOUND = { concurrencyShare: 0.9, rateShare: 0.95, lagP99Ms: 50 } as const;

export class DeliveredLoad {
  private busyMs = 0;
  private settled = 0;
  private lag = new DDSketch();
  private final: DeliveredData["final"] | null = null;

  static fromJSON(d: DeliveredData | null): DeliveredLoad {
    const x = new DeliveredLoad();
    if (!d) return x;
    x.busyMs = d.busyMs;
    x.settled = d.settled;
    if (d.lag) x.lag = DDSketch.fromJSON(d.lag);
    x.final = d.final ?? null;
    return x;
  }

  toJSON(): DeliveredData {
    return {
      busyMs: this.busyMs,
      settled: this.settled,
      lag: this.final ? null : this.lag.toJSON(),
      ...(this.final ? { final: this.final } : {}),
    };
  }

  add(r: { latencyMs: number; lagMs?: number }): void {
    if (this.final) return;
    this.busyMs += r.latencyMs;
    this.settled += 1;
    if (r.lagMs !== undefined) this.lag.add(r.lagMs);
  }

  freeze(): void {
    if (this.final) return;
    this.final = { lagP50: this.lag.quantile(0.5) ?? null, lagP99: this.lag.quantile(0.99) ?? null };
    this.lag = new DDSketch();
  }

  view(cfg: RunConfig, durationMs: number): Delivered {
    const seconds = durationMs > 0 ? durationMs / 1000 : null;
    const rateMode = cfg.rate !== null;
    const lagP50 = this.final ? this.final.lagP50 : (this.lag.quantile(0.5) ?? null);
    const lagP99 = this.final ? this.final.lagP99 : (this.lag.quantile(0.99) ?? null);
    return {
      concurrency: { target: rateMode ? null : cfg.pool, mean: seconds !== null ? this.busyMs / durationMs : null },
      rate: { target: cfg.rate, achieved: seconds !== null && this.settled > 0 ? this.settled / seconds : null },
      scheduleLagMs: rateMode ? { p50: lagP50, p99: lagP99 } : null,
    };
  }
}

/** `generator_bound` when the delivered load fell short of what was asked, else nothing. */
export function generatorBound(d: Delivered): Warning | null {
  const { concurrency, rate, scheduleLagMs } = d;
  const fmt = (x: number) => (Math.round(x * 100) / 100).toString();
  if (rate.target === null) {
    if (
      concurrency.target !== null &&
      concurrency.mean !== null &&
      concurrency.mean < GENERATOR_BOUND.concurrencyShare * concurrency.target
    ) {
      return {
        code: "generator_bound",
        message: `Mean concurrency was ${fmt(concurrency.mean)} of the ${concurrency.target} asked for: the load generator, not the target, limited the load, and latencies may include its queueing.`,
      };
    }
    return null;
  }
  const reasons: string[] = [];
  if (rate.achieved !== null && rate.achieved < GENERATOR_BOUND.rateShare * rate.target) {
    reasons.push(`the achieved rate was ${fmt(rate.achieved)} req/s of the ${fmt(rate.target)} asked for`);
  }
  if (scheduleLagMs?.p99 != null && scheduleLagMs.p99 > GENERATOR_BOUND.lagP99Ms) {
    reasons.push(`requests were sent up to ${fmt(scheduleLagMs.p99)} ms late (p99 schedule lag)`);
  }
  return reasons.length > 0
    ? { code: "generator_bound", message: `The load asked for was not delivered: ${reasons.join(", and ")}.` }
    : null;
}
