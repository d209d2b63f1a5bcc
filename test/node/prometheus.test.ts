// GET /v1/runs/:id/metrics: the run in the OpenMetrics text format, as Prometheus would
// scrape it, parsed with an independent parser (parse-prometheus-text-format) and checked
// against the results document of the same run.
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { METRICS } from "../../contract/metric-catalog.ts";
import { api, e2eServer } from "./dev-server.ts";
import { createRun, drive } from "./drive.ts";

interface Family {
  name: string;
  type: string;
  help: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; quantiles?: Record<string, string>; count?: string; sum?: string }>;
}

/** How a catalog unit ends a metric's name. */
const UNIT_SUFFIX: Record<string, string> = {
  ms: "ms",
  tokens: "tokens",
  "tokens/sec/user": "tokens_per_sec_per_user",
  "tokens/sec": "tokens_per_sec",
  "requests/sec": "requests_per_sec",
  requests: "requests",
  "%": "percent",
  sec: "sec",
};

const server = e2eServer();
beforeAll(() => server.start());
afterAll(() => server.dispose());

async function scrape(id: string, token: string) {
  const res = await fetch(`${server.url}/v1/runs/${id}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  const families = new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));
  /** The one sample of a family (an OpenMetrics counter's sample is `<name>_total`). */
  const one = (name: string) => {
    const f = families.get(name);
    expect(f, `${name} in\n${text}`).toBeDefined();
    expect(f!.metrics).toHaveLength(1);
    return f!.metrics[0]!;
  };
  return { res, text, families, one, value: (name: string) => Number(one(name).value) };
}

describe("GET /v1/runs/:id/metrics", () => {
  it("serves a finished run as OpenMetrics: ledger counters, load gauges and AIPerf-named summaries equal to its results document", async () => {
    const run = await createRun(server.url, {
      target: { url: "builtin:mock", stream: true },
      load: { concurrency: 4 },
      stop: { requests: 46 },
      graceSeconds: 60,
    });
    await drive(server.url, run, { concurrency: 4, pauseMs: 20, perReport: 4 });
    const results = (await api(server.url, "GET", `/v1/runs/${run.id}/results`, run.readToken)).body;
    expect(results.final).toBe(true);

    const { res, text, families, one, value } = await scrape(run.id, run.readToken);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/openmetrics-text; version=1.0.0; charset=utf-8");
    expect(text.endsWith("# EOF\n")).toBe(true);

    // Every sample says which run it is (read from the text: the parser folds a summary's
    // samples into one object without their labels).
    const samples = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    expect(samples.length).toBeGreaterThan(20);
    for (const line of samples) expect(line, line).toMatch(new RegExp(`^edgeperf_\\w+\\{run_id="${run.id}"[,}]`));
    expect(one("edgeperf_run_info").labels).toEqual({ run_id: run.id, phase: "complete", status: "complete" });

    // The ledger, as counters (the family is typed; its sample is <name>_total).
    expect(families.get("edgeperf_requests_completed")?.type).toBe("COUNTER");
    expect(value("edgeperf_requests_completed_total")).toBe(results.counts.completed);
    expect(value("edgeperf_requests_failed_total")).toBe(results.counts.failed);
    expect(results.counts.failed).toBeGreaterThan(0);
    expect(value("edgeperf_requests_abandoned_total")).toBe(results.counts.abandoned);
    expect(value("edgeperf_credits_granted_total")).toBe(results.counts.granted);

    // Gauges: nothing in flight once complete, and the delivered load.
    expect(families.get("edgeperf_requests_in_flight")?.type).toBe("GAUGE");
    expect(value("edgeperf_requests_in_flight")).toBe(0);
    expect(value("edgeperf_credits_outstanding")).toBe(0);
    expect(value("edgeperf_delivered_concurrency")).toBeCloseTo(results.delivered.concurrency.mean, 9);
    expect(value("edgeperf_target_concurrency")).toBe(4);
    expect(value("edgeperf_delivered_rate_requests_per_sec")).toBeCloseTo(results.delivered.rate.achieved, 9);

    // Summaries under AIPerf's tags, with the unit: quantiles, sum and count as the document has them.
    const ttft = one("edgeperf_time_to_first_token_ms");
    expect(Object.keys(ttft.quantiles ?? {})).toEqual(["0.01", "0.05", "0.1", "0.25", "0.5", "0.75", "0.9", "0.95", "0.99", "0.999"]);
    expect(families.get("edgeperf_time_to_first_token_ms")?.type).toBe("SUMMARY");
    expect(Number(ttft.quantiles?.["0.99"])).toBeCloseTo(results.metrics.time_to_first_token.p99, 9);
    expect(Number(ttft.quantiles?.["0.5"])).toBeCloseTo(results.metrics.time_to_first_token.p50, 9);
    // The parser keeps a summary's count and sum only when it has no other label: read them from the text.
    const sample = (name: string) => Number(new RegExp(`^${name}\\{run_id="${run.id}"\\} (\\S+)$`, "m").exec(text)?.[1]);
    expect(sample("edgeperf_time_to_first_token_ms_count")).toBe(results.metrics.time_to_first_token.count);
    expect(sample("edgeperf_time_to_first_token_ms_sum")).toBeCloseTo(results.metrics.time_to_first_token.sum, 6);
    expect(Number(one("edgeperf_request_latency_ms").quantiles?.["0.999"])).toBeCloseTo(results.metrics.request_latency.p999, 9);
    // Scalars as gauges.
    expect(value("edgeperf_request_throughput_requests_per_sec")).toBeCloseTo(results.metrics.request_throughput.avg, 9);
    expect(value("edgeperf_request_error_rate_percent")).toBeCloseTo(results.metrics.request_error_rate.avg, 9);
    // Every catalog metric with a value is there, named edgeperf_<tag>_<unit>; none without one.
    for (const def of METRICS) {
      const m = results.metrics[def.tag];
      const has = def.kind === "distribution" ? m.count > 0 : m.avg !== null;
      expect(UNIT_SUFFIX[def.unit], def.unit).toBeDefined();
      expect(families.has(`edgeperf_${def.tag}_${UNIT_SUFFIX[def.unit]}`), def.tag).toBe(has);
    }
  });

  it("serves a live run: it is running, and its counters never run ahead of the ledger", async () => {
    const run = await createRun(server.url, { target: { url: "builtin:mock" }, load: { concurrency: 4 }, stop: { requests: 400 } });
    try {
      await drive(server.url, run, { concurrency: 4, pauseMs: 10, reports: 6 });
      const { res, text, one, value } = await scrape(run.id, run.readToken);
      expect(res.status, text).toBe(200);
      const after = (await api(server.url, "GET", `/v1/runs/${run.id}`, run.readToken)).body;
      expect(one("edgeperf_run_info").labels?.phase).toBe("running");
      expect(value("edgeperf_requests_completed_total") + value("edgeperf_requests_failed_total")).toBe(12);
      expect(value("edgeperf_credits_granted_total")).toBeLessThanOrEqual(after.counts.granted);
      expect(value("edgeperf_credits_outstanding")).toBeGreaterThan(0);
      expect(text.endsWith("# EOF\n")).toBe(true);
    } finally {
      await api(server.url, "POST", `/v1/runs/${run.id}/stop`, "e2e-api-token", { mode: "force" });
    }
  });

  it("needs the run's read token: 401 without a token, 404 with another run's", async () => {
    const run = await createRun(server.url, { target: { url: "builtin:mock" }, stop: { requests: 4 }, graceSeconds: 5 });
    try {
      expect((await fetch(`${server.url}/v1/runs/${run.id}/metrics`)).status).toBe(401);
      const other = await fetch(`${server.url}/v1/runs/${run.id}/metrics`, { headers: { authorization: "Bearer epr_someone-else" } });
      expect(other.status).toBe(404);
    } finally {
      await api(server.url, "POST", `/v1/runs/${run.id}/stop`, "e2e-api-token", { mode: "force" });
    }
  });
});
