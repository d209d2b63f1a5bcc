// The load the run really delivered, beside the load it asked for (README, "Delivered
// load"): a run whose generator could not keep up says so in its results instead of
// reporting the generator's own queueing as the target's latency.
//
// - concurrency.mean: the time-weighted mean of requests in flight over the measured
//   period. By Little's law that is the summed time every settled measured request spent
//   in flight (its latency, failures included) divided by benchmark_duration.
// - rate.achieved: settled measured requests per second of benchmark_duration.
// - scheduleLagMs (rate mode and trace replay): how late each request was sent after its credit's intended
//   time, as the agents measured it (`lagMs` of a result), kept as a sketch.
// - connection_bound: an edge agent asked to carry more requests than it may have waiting
//   for response headers (contract/run-plan.ts, HEADER_WAIT_LIMIT) against a target that
//   answers only when done; it carries that many and the rest of its share is not sent.
//
// Stored in the coordinator's `meta` row "delivered" beside the metrics, in the same
// transactions; frozen at completion like them, so a finished run stores a few numbers.

import { HEADER_WAIT_LIMIT } from "../contract/run-plan";
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
    // A trace replay is scheduled like rate mode, on the trace's own times: load.concurrency
    // is only a cap there, and there is no rate target.
    const scheduled = rateMode || cfg.dataset?.replay === true;
    const lagP50 = this.final ? this.final.lagP50 : (this.lag.quantile(0.5) ?? null);
    const lagP99 = this.final ? this.final.lagP99 : (this.lag.quantile(0.99) ?? null);
    return {
      concurrency: { target: scheduled ? null : cfg.pool, mean: seconds !== null ? this.busyMs / durationMs : null },
      rate: { target: cfg.rate, achieved: seconds !== null && this.settled > 0 ? this.settled / seconds : null },
      scheduleLagMs: scheduled ? { p50: lagP50, p99: lagP99 } : null,
    };
  }
}

/** `generator_bound` when the delivered load fell short of what was asked, else nothing. */
export function generatorBound(d: Delivered): Warning | null {
  const { concurrency, rate, scheduleLagMs } = d;
  const fmt = (x: number) => (Math.round(x * 100) / 100).toString();
  if (rate.target === null && concurrency.target !== null) {
    if (concurrency.mean !== null && concurrency.mean < GENERATOR_BOUND.concurrencyShare * concurrency.target) {
      return {
        code: "generator_bound",
        message: `Mean concurrency was ${fmt(concurrency.mean)} of the ${concurrency.target} asked for: the load generator, not the target, limited the load, and latencies may include its queueing.`,
      };
    }
    return null;
  }
  const reasons: string[] = [];
  if (rate.target !== null && rate.achieved !== null && rate.achieved < GENERATOR_BOUND.rateShare * rate.target) {
    reasons.push(`the achieved rate was ${fmt(rate.achieved)} req/s of the ${fmt(rate.target)} asked for`);
  }
  if (scheduleLagMs?.p99 != null && scheduleLagMs.p99 > GENERATOR_BOUND.lagP99Ms) {
    reasons.push(`requests were sent up to ${fmt(scheduleLagMs.p99)} ms late (p99 schedule lag)`);
  }
  return reasons.length > 0
    ? { code: "generator_bound", message: `The load asked for was not delivered: ${reasons.join(", and ")}.` }
    : null;
}

/**
 * `connection_bound` when edge agents were asked for more requests in flight than one
 * invocation may have waiting for response headers, against a target that answers only
 * when done (`cfg.waitsForHeaders`). In concurrency mode that is known from the plan:
 * the pool over the edge agents. In rate mode the in-flight count is rate × latency,
 * known only once measured: the warning comes with the finished run when the mean in
 * flight per edge agent reached GENERATOR_BOUND.concurrencyShare of the limit, the point
 * where agents, capped there, start holding requests back.
 */
export function connectionBound(cfg: RunConfig, d: Delivered, finished: boolean): Warning | null {
  if (!cfg.waitsForHeaders || cfg.edgeAgents <= 0) return null;
  const limit = HEADER_WAIT_LIMIT;
  const why = "the target answers only when done, and one edge agent may have at most";
  if (cfg.rate === null) {
    const share = Math.ceil(cfg.pool / cfg.edgeAgents);
    if (share <= limit) return null;
    const need = Math.ceil(cfg.pool / limit);
    const fix =
      need <= cfg.maxAgents
        ? `Give the run ${need} edge agents (agents.edge), or leave agents.edge out to have them sized by this limit.`
        : `This service allows ${cfg.maxAgents} agents a run (MAX_AGENTS): ask for at most ${cfg.maxAgents * limit} in flight, or raise MAX_AGENTS to ${need}.`;
    return {
      code: "connection_bound",
      message: `Each of the ${cfg.edgeAgents} edge agents was asked for up to ${share} requests in flight, but ${why} ${limit} waiting for response headers: it sends ${limit} at a time and the load stays under the ${cfg.pool} asked for. ${fix}`,
    };
  }
  const mean = d.concurrency.mean;
  if (!finished || mean === null) return null;
  const perAgent = mean / cfg.edgeAgents;
  if (perAgent < GENERATOR_BOUND.concurrencyShare * limit) return null;
  const fmt = (x: number) => (Math.round(x * 100) / 100).toString();
  return {
    code: "connection_bound",
    message: `Edge agents had ${fmt(perAgent)} requests in flight each on average, at the limit: ${why} ${limit} waiting for response headers, so requests beyond that were held back. Set load.maxConcurrency to what the rate needs in flight (rate × latency, with room to spare) so edge agents are sized by it, or give the run more edge agents (agents.edge).`,
  };
}
