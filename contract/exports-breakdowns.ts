// The results broken down: per region (README, "Results per region") and per time slice
// in AIPerf's timeslice layouts (profile_export_aiperf_timeslices.csv: header
// `Timeslice,Metric,Unit,Stat,Value`, one row per statistic; the .json: a `timeslices`
// array of `{timeslice_index, <tag>: {unit, stat…}}`). Pure functions of the results
// document, like exports.ts, whose number and field formatting they share.
//
// A slice is one bucket of the run's time series: `bucketSeconds` wide (RunSpec timesliceSeconds, AIPerf's --slice-duration, default 1 s; doubling past 240 slices on
// long runs so the series stays bounded), counted from the first measured credit. Within
// a slice the series keeps counts, output tokens and the p50/p90/p99/max of latency and
// TTFT, so those are the statistics a slice has.

import { CSV_STATS, csvField, csvNumber, displayName, isInteger, jsonMetric, presentMetrics, stat } from "./exports";
import type { Metric } from "./exports";
import { metricDef } from "./metric-catalog";
import type { MetricTag } from "./metric-catalog";
import type { Bucket, Quantiles, Results } from "./results";

/** profile_export_aiperf_regions.csv: each region's metrics, one row per region and metric. */
export function toRegionsCsv(results: Results): string {
  const rows: string[][] = [["Region", "Metric", ...CSV_STATS]];
  const regions = Object.keys(results.regions ?? {}).sort();
  for (const region of regions) {
    const doc = results.regions[region]?.metrics;
    if (!doc) continue;
    for (const [tag, m] of presentMetrics(doc)) {
      rows.push([region, displayName(tag, m), ...CSV_STATS.map((k) => csvNumber(stat(m, k), isInteger(tag, k)))]);
    }
  }
  return rows.map((r) => `${r.map(csvField).join(",")}\n`).join("");
}

type SliceMetrics = Array<[MetricTag, Metric]>;

function quantileMetric(unit: string, q: Quantiles | null, count: number): Metric | null {
  if (!q || count === 0) return null;
  return {
    unit,
    avg: null,
    min: null,
    max: q.max,
    sum: null,
    std: null,
    count,
    p1: null,
    p5: null,
    p10: null,
    p25: null,
    p50: q.p50,
    p75: null,
    p90: q.p90,
    p95: null,
    p99: q.p99,
    p999: null,
  };
}

function unitOf(tag: MetricTag): string {
  return metricDef(tag)?.unit ?? "";
}

/** The metrics one time-series bucket gives, under the catalog's tags and units. */
function sliceMetrics(b: Bucket, seconds: number): SliceMetrics {
  const out: SliceMetrics = [];
  const settled = b.completed + b.failed;
  const latency = quantileMetric(unitOf("request_latency"), b.latency, b.completed);
  const ttft = quantileMetric(unitOf("time_to_first_token"), b.ttft, b.completed);
  if (latency) out.push(["request_latency", latency]);
  if (ttft) out.push(["time_to_first_token", ttft]);
  out.push(["request_count", { unit: unitOf("request_count"), avg: b.completed }]);
  out.push(["error_request_count", { unit: unitOf("error_request_count"), avg: b.failed }]);
  out.push(["request_throughput", { unit: unitOf("request_throughput"), avg: b.completed / seconds }]);
  if (b.outputTokens > 0) out.push(["output_token_throughput", { unit: unitOf("output_token_throughput"), avg: b.outputTokens / seconds }]);
  if (settled > 0) out.push(["request_error_rate", { unit: unitOf("request_error_rate"), avg: (100 * b.failed) / settled }]);
  return out;
}

/** The slices in order; a second with no bucket (nothing settled) is an empty slice. */
function slices(results: Results): Array<{ index: number; metrics: SliceMetrics }> {
  const ts = results.timeseries;
  if (!ts || ts.buckets.length === 0) return [];
  const width = ts.bucketSeconds;
  const byIndex = new Map(ts.buckets.map((b) => [Math.round(b.t / width), b]));
  const last = Math.max(...byIndex.keys());
  const out: Array<{ index: number; metrics: SliceMetrics }> = [];
  for (let i = 0; i <= last; i++) {
    const b = byIndex.get(i) ?? { t: i * width, completed: 0, failed: 0, outputTokens: 0, latency: null, ttft: null };
    out.push({ index: i, metrics: sliceMetrics(b, width) });
  }
  return out;
}

/** profile_export_aiperf_timeslices.csv, in AIPerf's tidy layout. */
export function toTimeslicesCsv(results: Results): string {
  const rows: string[][] = [["Timeslice", "Metric", "Unit", "Stat", "Value"]];
  for (const s of slices(results)) {
    for (const [tag, m] of s.metrics) {
      const name = metricDef(tag)?.header ?? tag;
      for (const k of CSV_STATS) {
        const v = stat(m, k);
        if (v !== null) rows.push([String(s.index), name, m.unit, k, csvNumber(v, isInteger(tag, k))]);
      }
    }
  }
  return rows.map((r) => `${r.map(csvField).join(",")}\n`).join("");
}

/** profile_export_aiperf_timeslices.json, in AIPerf's layout, with the slice width beside it. */
export function toTimeslicesJson(results: Results): Record<string, unknown> {
  return {
    slice_duration_seconds: results.timeseries?.bucketSeconds ?? null,
    timeslices: slices(results).map((s) => ({
      timeslice_index: s.index,
      ...Object.fromEntries(s.metrics.map(([tag, m]) => [tag, jsonMetric(m)])),
    })),
    ...(results.spec !== undefined && results.spec !== null ? { input_config: structuredClone(results.spec) } : {}),
  };
}
