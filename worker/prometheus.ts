// GET /v1/runs/:id/metrics — the run in the OpenMetrics text format (OpenMetrics 1.0,
// which Prometheus scrapes natively), so a run can be watched and alerted on with the
// tools a team already has. Read token, as a bearer header (Prometheus: `authorization:
// {credentials: <read token>}`); the run is served while it runs and during its grace
// window, like its results.
//
// Every sample carries `run_id`. Names are `edgeperf_` + what is measured + the unit:
// - the ledger as counters: requests completed, failed and abandoned, credits granted
//   and returned (`_total`);
// - gauges: requests in flight (the agents' last reports) and credits outstanding,
//   agents alive, the delivered load (mean concurrency, achieved rate, schedule lag) and
//   its targets;
// - every metric of the catalog, under AIPerf's tag: a distribution as a summary
//   (`edgeperf_time_to_first_token_ms{quantile="0.99"}`, `_sum`, `_count`), a scalar as a
//   gauge. A metric with no value yet (TTFT of a run that does not stream) is left out.

import type { IRequest } from "itty-router";
import { readConfig } from "../contract/config";
import { unwrap } from "../contract/errors";
import { METRICS } from "../contract/metric-catalog";
import type { Percentile, Results } from "../contract/results";
import { runAuth } from "./auth";
import { coordinator } from "./runs";

export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const QUANTILES: ReadonlyArray<[Percentile, string]> = [
  ["p1", "0.01"],
  ["p5", "0.05"],
  ["p10", "0.1"],
  ["p25", "0.25"],
  ["p50", "0.5"],
  ["p75", "0.75"],
  ["p90", "0.9"],
  ["p95", "0.95"],
  ["p99", "0.99"],
  ["p999", "0.999"],
];

/** A catalog unit as a metric-name suffix: "tokens/sec/user" → "tokens_per_sec_per_user", "%" → "percent". */
export function unitSuffix(unit: string): string {
  return unit
    .replace(/%/g, "percent")
    .replace(/\//g, "_per_")
    .replace(/[^A-Za-z0-9_]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toLowerCase();
}

/** The family name of a catalog metric: `edgeperf_<tag>_<unit>`. */
export function familyName(tag: string, unit: string): string {
  const suffix = unitSuffix(unit);
  return suffix ? `edgeperf_${tag}_${suffix}` : `edgeperf_${tag}`;
}

// OpenMetrics escaping: HELP text escapes backslash and newline; label values also the quote.
const escapeHelp = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabel = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

function value(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "+Inf";
  if (n === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(n);
}

const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

class Writer {
  private readonly lines: string[] = [];
  constructor(private readonly labels: string) {}

  family(name: string, type: "counter" | "gauge" | "summary" | "info", help: string, unit = ""): void {
    this.lines.push(`# TYPE ${name} ${type}`);
    if (unit) this.lines.push(`# UNIT ${name} ${unit}`);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`);
  }

  sample(name: string, v: number, extra = ""): void {
    this.lines.push(`${name}{${this.labels}${extra}} ${value(v)}`);
  }

  /** A family of one sample, left out when there is no value. */
  gauge(name: string, v: number | null | undefined, help: string, unit = ""): void {
    if (!finite(v)) return;
    this.family(name, "gauge", help, unit);
    this.sample(name, v);
  }

  counter(name: string, v: number, help: string): void {
    this.family(name, "counter", help);
    this.sample(`${name}_total`, v);
  }

  text(): string {
    return `${this.lines.join("\n")}\n# EOF\n`;
  }
}

/** The results document (final or live) as OpenMetrics text. */
export function toOpenMetrics(r: Results): string {
  const w = new Writer(`run_id="${escapeLabel(r.id)}"`);
  const c = r.counts;
  w.family("edgeperf_run", "info", "The run: its phase and status (README, Run lifecycle).");
  w.sample("edgeperf_run_info", 1, `,phase="${escapeLabel(r.phase)}",status="${escapeLabel(r.status)}"`);

  w.counter("edgeperf_requests_completed", c.completed, "Measured requests that succeeded.");
  w.counter("edgeperf_requests_failed", c.failed, "Measured requests that failed.");
  w.counter("edgeperf_requests_abandoned", c.abandoned, "Measured credits abandoned: a force stop, a dead agent or the drain timeout.");
  w.counter("edgeperf_credits_granted", c.granted, "Measured credits (permissions to send one request) granted to agents.");
  w.counter("edgeperf_credits_returned", c.returned, "Measured credits returned unused.");

  // Nothing still counts as in flight once the run is complete, whatever agents last said.
  const inflight = r.phase === "complete" ? 0 : r.agents.reduce((n, a) => n + a.inflight, 0);
  w.gauge("edgeperf_requests_in_flight", inflight, "Requests in flight, as the agents last reported.");
  w.gauge("edgeperf_credits_outstanding", c.outstanding, "Credits granted and not yet settled (in flight, held ahead, or unreported).");
  w.gauge("edgeperf_agents_alive", r.agents.filter((a) => a.alive).length, "Agents that called within their lease TTL.");

  const d = r.delivered;
  if (d) {
    w.gauge("edgeperf_target_concurrency", d.concurrency.target, "load.concurrency (closed loop).");
    w.gauge("edgeperf_delivered_concurrency", d.concurrency.mean, "Time-weighted mean of requests in flight over the measured period.");
    w.gauge("edgeperf_target_rate_requests_per_sec", d.rate.target, "load.rate (open loop).", "requests_per_sec");
    w.gauge(
      "edgeperf_delivered_rate_requests_per_sec",
      d.rate.achieved,
      "Achieved rate: settled measured requests per second.",
      "requests_per_sec",
    );
    w.gauge("edgeperf_schedule_lag_p50_ms", d.scheduleLagMs?.p50, "Rate mode: median of how late requests were sent.", "ms");
    w.gauge("edgeperf_schedule_lag_p99_ms", d.scheduleLagMs?.p99, "Rate mode: p99 of how late requests were sent.", "ms");
  }

  for (const def of METRICS) {
    const m = (r.metrics as unknown as Record<string, Record<string, unknown> | undefined>)[def.tag];
    if (!m) continue;
    const unit = typeof m.unit === "string" ? m.unit : def.unit;
    const name = familyName(def.tag, unit);
    const help = `${def.header} (${unit}): ${def.definition}`;
    if (def.kind === "scalar") {
      w.gauge(name, m.avg as number | null, help, unitSuffix(unit));
      continue;
    }
    const count = finite(m.count) ? m.count : 0;
    if (count === 0) continue;
    w.family(name, "summary", help, unitSuffix(unit));
    for (const [key, q] of QUANTILES) if (finite(m[key])) w.sample(name, m[key], `,quantile="${q}"`);
    w.sample(`${name}_sum`, finite(m.sum) ? m.sum : 0);
    w.sample(`${name}_count`, count);
  }
  return w.text();
}

export async function getMetrics(request: IRequest, env: Env): Promise<Response> {
  const auth = await runAuth(request, readConfig(env).apiToken);
  const results = unwrap(await coordinator(env, request.params.id).results(auth, 0)) as Results;
  return new Response(toOpenMetrics(results), { headers: { "content-type": OPENMETRICS_CONTENT_TYPE, "cache-control": "no-store" } });
}
