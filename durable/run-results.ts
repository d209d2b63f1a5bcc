// The run's measured results as stored: the merged metrics (metrics.ts) and the
// per-second time series (timeseries.ts), in the coordinator's `meta` rows "metrics" and
// "timeseries". Written inside the coordinator's transactions, with the settlement that
// produced them, so a crash keeps both or neither.
//
// In memory: the parsed copies, so a report does not re-parse ~20 KB of JSON; dropped by
// `invalidate()` when a transaction fails (its writes were undone) or the run is wiped,
// and reloaded lazily. When the run completes, both are frozen (final document, frozen
// buckets): what the grace window serves no longer depends on the run's size.

import type { ResultItem } from "../contract/protocol";
import { DeliveredLoad } from "./delivered";
import type { DeliveredData } from "./delivered";
import { RunMetrics } from "./metrics";
import { RegionResults } from "./region-results";
import type { RunMetricsData } from "./metrics";
import type { RunState } from "./run-machine";
import type { RunStore } from "./run-store";
import { TimeSeries } from "./timeseries";
import type { TimeSeriesData } from "./timeseries";
import { benchmarkDurationMs } from "./views";
import type { Goodput } from "../contract/goodput";

export class RunResults {
  /** Results per region (region-results.ts), in the same transactions. */
  readonly regions: RegionResults;
  private metrics: RunMetrics | null = null;
  private series: TimeSeries | null = null;
  private delivered: DeliveredLoad | null = null;

  constructor(private readonly store: RunStore) {
    this.regions = new RegionResults(store);
  }

  invalidate(): void {
    this.regions.invalidate();
    this.metrics = null;
    this.series = null;
    this.delivered = null;
  }

  /** The empty documents of a new run (inside its creating transaction). */
  /** `sliceSeconds`: the series' first bucket width (RunSpec timesliceSeconds). */
  start(sliceSeconds = 1): void {
    this.invalidate();
    this.store.putMeta("metrics", RunMetrics.empty().toJSON());
    this.store.putMeta("timeseries", TimeSeries.empty(sliceSeconds).toJSON());
  }

  metricsNow(): RunMetrics {
    if (!this.metrics) this.metrics = RunMetrics.fromJSON(this.store.getMeta<RunMetricsData>("metrics") ?? RunMetrics.empty().toJSON());
    return this.metrics;
  }

  /** The delivered load (delivered.ts); runs stored before it existed start from nothing. */
  deliveredNow(): DeliveredLoad {
    if (!this.delivered) this.delivered = DeliveredLoad.fromJSON(this.store.getMeta<DeliveredData>("delivered"));
    return this.delivered;
  }

  seriesNow(): TimeSeries {
    if (!this.series) this.series = TimeSeries.fromJSON(this.store.getMeta<TimeSeriesData>("timeseries"));
    return this.series;
  }

  /**
   * Adds settled measured results; each goes in the second it ended: its endMs, clamped
   * to the run's own clock window (from the measured start to `now`), else `now`. An
   * agent's clock cannot stretch the series: one far-off endMs once turned it into
   * 65,536-second buckets.
   */
  add(results: readonly ResultItem[], state: RunState, now: number, region: string, goodput?: Goodput): void {
    if (results.length === 0) return;
    this.regions.add(region, results, goodput);
    const metrics = this.metricsNow();
    const series = this.seriesNow();
    const delivered = this.deliveredNow();
    const runToMeasured = (state.measuredStartedAt ?? now) - (state.startedAt ?? now);
    const windowMs = Math.max(0, now - (state.measuredStartedAt ?? now));
    for (const result of results) {
      metrics.add(result, goodput);
      delivered.add(result);
      const endMs = result.endMs !== undefined ? Math.min(windowMs, Math.max(0, result.endMs - runToMeasured)) : windowMs;
      series.add(endMs / 1000, result);
    }
    this.store.putMeta("metrics", metrics.toJSON());
    this.store.putMeta("timeseries", series.toJSON());
    this.store.putMeta("delivered", delivered.toJSON());
  }

  /** At completion (`state` is complete): the final metrics document and frozen buckets. */
  freeze(state: RunState): void {
    const metrics = this.metricsNow();
    metrics.freeze(benchmarkDurationMs(state, state.completedAt ?? 0));
    this.store.putMeta("metrics", metrics.toJSON());
    const series = this.seriesNow();
    series.freezeAll();
    this.store.putMeta("timeseries", series.toJSON());
    this.regions.freeze(benchmarkDurationMs(state, state.completedAt ?? 0));
    const delivered = this.deliveredNow();
    delivered.freeze();
    this.store.putMeta("delivered", delivered.toJSON());
  }
}
