// A results document in NVIDIA AIPerf's export layouts (README "The API", `?format=aiperf`
// and `?format=csv`), so scripts written for AIPerf's artifacts read ours unchanged.
// The layouts follow ai-dynamo/aiperf (src/aiperf/common/models/export_models.py,
// exporters/metrics_json_exporter.py, exporters/metrics_csv_exporter.py,
// common/constants.py STAT_KEYS, metrics/types/*.py headers); test/fixtures/ holds
// the expected layouts and what each departure from AIPerf is.
//
// Pure functions of the results document: no clock (a running run ends at the
// snapshot's serverTime), no Cloudflare imports.

import { METRICS, metricDef } from "./metric-catalog";
import type { MetricTag } from "./metric-catalog";
import type { DistributionMetric, MetricsDocument, Results, ScalarMetric } from "./results";

export type Metric = DistributionMetric | ScalarMetric;

// 1.1 is the version whose per-metric fields (count, sum) we fill; later versions only
// add optional blocks (run_info, warmup_metrics, telemetry) that we have nothing for.
const SCHEMA_VERSION = "1.1";

// AIPerf's JsonExportData declares these fields in this order, and pydantic writes
// declared fields in declaration order. Tags it does not declare (request_error_rate)
// are pydantic "extra" fields, written after every declared field.
const DECLARED_METRICS: readonly MetricTag[] = METRICS.filter((m) => m.aiperfJsonOrder !== null)
  .sort((a, b) => (a.aiperfJsonOrder ?? 0) - (b.aiperfJsonOrder ?? 0))
  .map((m) => m.tag);

const PERCENTILES = ["p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99"] as const;

// JsonMetricResult's field order. It has no p999, and newer AIPerf readers forbid
// unknown fields in a metric block, so p999 stays out of the export.
const JSON_FIELDS = ["avg", ...PERCENTILES, "min", "max", "std", "count", "sum"] as const;

// AIPerf's STAT_KEYS: the columns of the CSV's first section, in this order.
export const CSV_STATS = ["avg", "min", "max", "sum", ...PERCENTILES, "std"] as const;

// The CSV exporter writes the unit after the name except for these.
const UNITS_NOT_SHOWN: ReadonlySet<string> = new Set(["count", "requests"]);

/** AIPerf's `profile_export_aiperf.json`, as a plain object ready for JSON.stringify. */
export function toAiperfJson(results: Results): Record<string, unknown> {
  const metrics = new Map(presentMetrics(results.metrics));
  const out: Record<string, unknown> = { schema_version: SCHEMA_VERSION, benchmark_id: results.id };
  for (const tag of DECLARED_METRICS) {
    const m = metrics.get(tag);
    if (m) out[tag] = jsonMetric(m);
  }
  // The stored public spec: secrets were replaced before it was ever stored. A copy,
  // so a caller changing the export cannot change the results document.
  if (results.spec !== undefined && results.spec !== null) out.input_config = structuredClone(results.spec);
  out.was_cancelled = results.status === "cancelled";
  out.error_summary = results.errors.map((e) => ({
    error_details: { code: httpStatus(e.code), type: e.type, message: e.code },
    count: e.count,
  }));
  const start = pythonIsoTime(results.startedAt);
  if (start !== undefined) out.start_time = start;
  const end = pythonIsoTime(results.completedAt ?? results.serverTime);
  if (end !== undefined) out.end_time = end;
  for (const [tag, m] of metrics) if (!DECLARED_METRICS.includes(tag)) out[tag] = jsonMetric(m);
  return out;
}

/** AIPerf's `profile_export_aiperf.csv`: distributions, a blank line, then single values. */
export function toAiperfCsv(results: Results): string {
  // Python's sorted() on the tags: plain code-unit order.
  const metrics = presentMetrics(results.metrics).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Like AIPerf, a metric belongs to the first section when it has any percentile.
  const distributions = metrics.filter(([, m]) => PERCENTILES.some((p) => stat(m, p) !== null));
  const singles = metrics.filter(([, m]) => !PERCENTILES.some((p) => stat(m, p) !== null));

  const rows: string[][] = [];
  if (distributions.length > 0) {
    rows.push(["Metric", ...CSV_STATS]);
    for (const [tag, m] of distributions) {
      rows.push([displayName(tag, m), ...CSV_STATS.map((k) => csvNumber(stat(m, k), isInteger(tag, k)))]);
    }
    if (singles.length > 0) rows.push([]);
  }
  if (singles.length > 0) {
    rows.push(["Metric", "Value"]);
    for (const [tag, m] of singles) rows.push([displayName(tag, m), csvNumber(stat(m, "avg"), false)]);
  }
  // "\n", not the "\r\n" Python's csv module writes: every CSV reader takes either.
  return rows.map((r) => `${r.map(csvField).join(",")}\n`).join("");
}

/**
 * AIPerf writes a metric only once it has a value: a distribution with samples, a
 * scalar that could be computed. Request and error counts of 0 are values.
 */
export function presentMetrics(doc: MetricsDocument): [MetricTag, Metric][] {
  return (Object.entries(doc) as [MetricTag, Metric][]).filter(([, m]) => ("count" in m ? m.count > 0 : stat(m, "avg") !== null));
}

export function stat(m: Metric, key: string): number | null {
  const v = (m as unknown as Record<string, unknown>)[key];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

// Null fields are left out, as AIPerf's exclude_none does; count and sum exist only on
// distributions, as AIPerf gives them only to per-request ("record") metrics.
export function jsonMetric(m: Metric): Record<string, unknown> {
  const out: Record<string, unknown> = { unit: m.unit };
  for (const field of JSON_FIELDS) {
    const v = stat(m, field);
    if (v !== null) out[field] = v;
  }
  return out;
}

// AIPerf's ErrorDetails.code is the HTTP status (an int) or null. Our codes are
// strings such as "http_503" or "timeout"; the string itself goes in the message.
function httpStatus(code: string): number | null {
  const m = /^(?:http_)?([1-5]\d\d)$/.exec(code);
  return m ? Number(m[1]) : null;
}

// UTC with "+00:00": Python's datetime.fromisoformat before 3.11 rejects a "Z".
function pythonIsoTime(iso: string | null): string | undefined {
  const t = iso === null ? NaN : Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toISOString().replace(/Z$/, "+00:00") : undefined;
}

export function displayName(tag: MetricTag, m: Metric): string {
  const header = metricDef(tag)?.header ?? tag;
  return m.unit && !UNITS_NOT_SHOWN.has(m.unit.toLowerCase()) ? `${header} (${m.unit})` : header;
}

export function isInteger(tag: MetricTag, key: (typeof CSV_STATS)[number]): boolean {
  // AIPerf keeps token counts as Python ints, and its CSV writes an int without
  // decimals; every other value is a float (ns → ms/sec conversion, averages, rates).
  return metricDef(tag)?.integer === true && (key === "min" || key === "max" || key === "sum");
}

// AIPerf's _format_number: "" for None, an int as is, a float with two decimals.
export function csvNumber(v: number | null, integer: boolean): string {
  if (v === null) return "";
  if (integer && Number.isInteger(v)) return BigInt(v).toString();
  return fixed2(v);
}

/**
 * Python's f"{x:.2f}". toFixed agrees except on exact ties, which Python rounds half
 * to even and toFixed away from zero (0.125 → "0.12" vs "0.13"). A double is exactly
 * halfway between two hundredths only when it is an odd number of eighths.
 */
function fixed2(x: number): string {
  // toFixed switches to exponent notation from 1e21 on; such doubles are integers.
  if (Math.abs(x) >= 1e21) return `${BigInt(x)}.00`;
  const eighths = x * 8;
  if (Number.isInteger(eighths) && eighths % 2 !== 0) {
    const below = Math.floor(x * 100); // exact: x * 100 is an integer plus one half
    const even = below % 2 === 0 ? below : below + 1;
    return (even / 100).toFixed(2);
  }
  return x.toFixed(2);
}

// RFC 4180, quoting only where needed, like Python's csv.QUOTE_MINIMAL.
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
