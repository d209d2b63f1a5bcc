// Browser side: the results document's sections: the summary tiles and the metric table
// (from the metric catalog, served as /assets/metrics.ui.js), thresholds, errors,
// warnings, and the delivered load. Values go in through textContent (render.ui.js's h()).

import { METRICS } from "./metrics.ui.js";
import { $, fmt, h, isNum, kpi } from "./render.ui.js";

const DISTRIBUTIONS = METRICS.filter((m) => m.kind === "distribution");
const SCALARS = METRICS.filter((m) => m.kind === "scalar");
const STATS = ["avg", "min", "p50", "p90", "p99", "max", "std"];
// Short units for the summary tiles; the table keeps AIPerf's own.
const SHORT_UNIT = { "requests/sec": "req/s", "tokens/sec": "tok/s", sec: "s", requests: "" };

export function renderResults(r) {
  const m = r.metrics ?? {};
  $("results-state").textContent = r.final ? "final" : "live, partial";
  $("results-state").dataset.final = String(Boolean(r.final));
  // Once final, what has no value does not apply to this run (TTFT without streaming,
  // token throughput of an HTTP run…): left out, as AIPerf's console leaves it out.
  // While live it may still get one.
  const scalars = SCALARS.filter(({ tag }) => !r.final || isNum(m[tag]?.avg));
  const distributions = DISTRIBUTIONS.filter(({ tag }) => !r.final || (m[tag]?.count ?? 0) > 0);
  $("scalars").replaceChildren(
    ...scalars.map(({ tag, label }) => kpi(tag, label, fmt(m[tag]?.avg, SHORT_UNIT[m[tag]?.unit] ?? m[tag]?.unit), label)),
  );
  $("metrics").tBodies[0].replaceChildren(
    ...distributions.map(({ tag, label }) => {
      const d = m[tag] ?? {};
      return h(
        "tr",
        { "data-metric": tag },
        h("th", { scope: "row" }, label, h("span", { class: "unit" }, d.unit ?? "")),
        ...STATS.map((k) => h("td", { class: "num", "data-stat": k, "data-value": isNum(d[k]) ? d[k] : null }, fmt(d[k]))),
      );
    }),
  );

  const thresholds = r.thresholds ?? [];
  $("thresholds").replaceChildren(
    ...(thresholds.length
      ? thresholds.map((t) =>
          h(
            "li",
            { "data-ok": String(t.ok) },
            h("span", { class: "verdict" }, t.ok ? "pass" : "fail"),
            h("code", {}, t.expr),
            h("span", { class: "muted" }, `value ${fmt(t.value)}`),
          ),
        )
      : [h("li", { class: "muted" }, "No thresholds set for this run.")]),
  );

  const errors = r.errors ?? [];
  $("errors-card").hidden = errors.length === 0;
  $("errors").tBodies[0].replaceChildren(
    ...errors.map((e) => h("tr", {}, h("td", {}, h("code", {}, e.code)), h("td", {}, e.type), h("td", { class: "num" }, fmt(e.count)))),
  );
  renderWarnings(r.warnings);
}

/** The results' caveats (`generator_bound`, `all_requests_failed`, …); the card hides when there are none. */
export function renderWarnings(warnings) {
  const list = Array.isArray(warnings) ? warnings.filter((w) => w && typeof w === "object") : [];
  $("warnings-card").hidden = list.length === 0;
  $("warnings").replaceChildren(
    ...list.map((w) => h("li", { "data-code": w.code }, h("code", {}, String(w.code ?? "")), h("span", {}, String(w.message ?? "")))),
  );
}

/** README, "Delivered load": from every snapshot, so it moves while the run does. */
export function renderDelivered(d) {
  const card = $("delivered").closest("section");
  card.hidden = !d;
  if (!d) return; // a server that predates the block
  const c = d.concurrency ?? {};
  const r = d.rate ?? {};
  const of = (v, target, unit) => (isNum(target) ? `${fmt(v)} of ${fmt(target, unit)}` : fmt(v, unit));
  const tiles = [
    kpi(
      "delivered-concurrency",
      "Mean concurrency",
      of(c.mean, c.target),
      "Time-weighted requests in flight over the measured period (Little's law); of load.concurrency",
    ),
    kpi("delivered-rate", "Achieved rate", of(r.achieved, r.target, "req/s"), "Settled measured requests per second; of load.rate"),
  ];
  // Only rate mode schedules send times; a closed loop has no lag to show.
  if (d.scheduleLagMs) {
    const lag = d.scheduleLagMs;
    tiles.push(
      kpi(
        "schedule-lag",
        "Schedule lag p50 / p99",
        `${fmt(lag.p50)} / ${fmt(lag.p99, "ms")}`,
        "How late requests were sent after their intended time",
      ),
    );
  }
  $("delivered").replaceChildren(...tiles);
}

/**
 * README, "Results per region": a row a region, with its latency p99 drawn as a bar
 * against the slowest region's, so the regions compare at a glance. Hidden with none.
 */
export function renderRegions(regions) {
  const entries = Object.entries(regions ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  $("regions-card").hidden = entries.length === 0;
  const p99 = (r) => r.metrics?.request_latency?.p99;
  const slowest = Math.max(0, ...entries.map(([, r]) => (isNum(p99(r)) ? p99(r) : 0)));
  $("region-results").tBodies[0].replaceChildren(
    ...entries.map(([name, r]) => {
      const m = r.metrics ?? {};
      const c = r.counts ?? {};
      const cell = (v, unit) => h("td", { class: "num", "data-value": isNum(v) ? v : null }, fmt(v, unit));
      return h(
        "tr",
        { "data-region": name },
        h("th", { scope: "row" }, name),
        cell(r.agents),
        cell((c.completed ?? 0) + (c.failed ?? 0)),
        cell(m.time_to_first_token?.p50, "ms"),
        cell(m.time_to_first_token?.p99, "ms"),
        cell(m.request_latency?.p50, "ms"),
        cell(m.request_latency?.p99, "ms"),
        cell(m.request_error_rate?.avg),
        h(
          "td",
          {},
          h("meter", { class: "meter", min: 0, max: slowest || 1, value: isNum(p99(r)) ? p99(r) : 0, "aria-label": `${name} latency p99` }),
        ),
      );
    }),
  );
}
