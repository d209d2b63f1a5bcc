// Browser side: renders a status snapshot or a results document into the page's
// sections. Every value from the server goes in through textContent, never innerHTML:
// agent names and error codes come from agents, not from us.

import { METRICS } from "./metrics.ui.js";

const $ = (id) => document.getElementById(id);

/** A new element; children are nodes or strings (set as text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

/** A number for people: fewer decimals as it grows, "–" for nothing. */
export function fmt(v, unit = "") {
  if (!isNum(v)) return "–";
  const a = Math.abs(v);
  const digits = a === 0 || a >= 100 ? 0 : a >= 10 ? 1 : 2;
  const s = v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit ? `${s} ${unit}` : s;
}

export function fmtDuration(ms) {
  if (!isNum(ms)) return "–";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

const PHASE_LABEL = { created: "starting", running: "running", draining: "draining", complete: "complete" };

export function renderHeader(s, spec) {
  $("run-id").textContent = `${s.id.slice(0, 12)}…`;
  $("run-id").title = s.id;
  const badge = $("phase");
  badge.dataset.phase = s.phase;
  badge.dataset.outcome = s.outcome ?? "";
  const outcome =
    s.phase === "complete" && s.outcome ? ` · ${s.outcome}${s.stopReason && s.outcome !== "completed" ? ` (${s.stopReason})` : ""}` : "";
  badge.textContent = `${PHASE_LABEL[s.phase] ?? s.phase}${outcome}`;
  if (spec?.target) {
    const t = spec.target;
    $("target").textContent = [t.model, t.url].filter(Boolean).join(" @ ");
  }
  document.title = `edgeperf · ${PHASE_LABEL[s.phase] ?? s.phase} · ${s.id.slice(0, 8)}`;
}

/** Fraction done from the stop conditions: requests settled, or time, whichever is ahead. */
function progressOf(s, spec, now) {
  const c = s.counts;
  const settled = c.completed + c.failed + c.abandoned;
  const stop = spec?.stop ?? {};
  let frac = null;
  let label = `${settled.toLocaleString("en-US")} requests`;
  if (isNum(stop.requests) && stop.requests > 0) {
    frac = settled / stop.requests;
    label = `${settled.toLocaleString("en-US")} / ${stop.requests.toLocaleString("en-US")} requests`;
  }
  if (isNum(stop.durationSeconds) && s.startedAt) {
    const end = s.drainStartedAt ? Date.parse(s.drainStartedAt) : now;
    const t = (end - Date.parse(s.startedAt)) / 1000 / stop.durationSeconds;
    frac = frac === null ? t : Math.max(frac, t);
    label += ` · ${fmtDuration(end - Date.parse(s.startedAt))} of ${fmtDuration(stop.durationSeconds * 1000)}`;
  }
  if (s.phase === "complete") frac = 1;
  return { frac: frac === null ? null : Math.min(1, Math.max(0, frac)), label };
}

function kpi(key, label, value, title) {
  return h("div", { class: "kpi", "data-kpi": key, title }, h("dt", {}, label), h("dd", {}, value));
}

export function renderProgress(s, spec, now) {
  const { frac, label } = progressOf(s, spec, now);
  const bar = $("progress");
  bar.dataset.completed = String(s.counts.completed);
  bar.dataset.phase = s.phase;
  $("progress-fill").style.width = `${Math.round((frac ?? 0) * 1000) / 10}%`;
  bar.toggleAttribute("data-indeterminate", frac === null);
  if (frac !== null) bar.setAttribute("aria-valuenow", String(Math.round(frac * 100)));
  $("progress-label").textContent = frac === null ? label : `${label} · ${Math.floor(frac * 100)}%`;

  const c = s.counts;
  const l = s.live ?? {};
  const elapsed = s.startedAt ? (s.completedAt ? Date.parse(s.completedAt) : now) - Date.parse(s.startedAt) : null;
  $("kpis").replaceChildren(
    kpi("completed", "Completed", fmt(c.completed)),
    kpi("failed", "Failed", fmt(c.failed)),
    kpi("outstanding", "In flight", fmt(c.outstanding), "Credits granted to agents and not yet settled"),
    kpi("throughput", "Throughput", fmt(l.requestThroughput, "req/s")),
    kpi("latency-p50", "Latency p50", fmt(l.latencyP50, "ms")),
    kpi("latency-p99", "Latency p99", fmt(l.latencyP99, "ms")),
    kpi("ttft-p50", "TTFT p50", fmt(l.ttftP50, "ms")),
    kpi("elapsed", "Elapsed", fmtDuration(elapsed)),
  );
}

export function renderAgents(s, now) {
  const agents = s.agents ?? [];
  const byRegion = new Map();
  for (const a of agents) {
    const key = a.region ?? "no region";
    const r = byRegion.get(key) ?? { agents: 0, credits: 0, inflight: 0 };
    r.agents += 1;
    r.credits += a.outstanding;
    r.inflight += a.inflight;
    byRegion.set(key, r);
  }
  $("regions").replaceChildren(
    ...[...byRegion].map(([region, r]) =>
      h(
        "span",
        { class: "chip", "data-region": region, "data-credits": r.credits },
        h("strong", {}, region),
        ` ${r.credits} credits · ${r.inflight} in flight · ${r.agents} agent${r.agents === 1 ? "" : "s"}`,
      ),
    ),
  );
  const alive = agents.filter((a) => a.alive).length;
  $("agents-summary").textContent = agents.length ? `${alive} of ${agents.length} alive` : "none yet";
  const rows = agents.map((a) => {
    const share = Math.max(a.concurrency, a.outstanding, 1);
    const seen = now - Date.parse(a.lastSeenAt);
    return h(
      "tr",
      { "data-agent": a.agentId, "data-outstanding": a.outstanding, "data-inflight": a.inflight, class: a.alive ? null : "gone" },
      h("td", { title: a.agentId }, a.name ?? `${a.agentId.slice(0, 8)}…`),
      h("td", {}, a.region ?? "–"),
      h(
        "td",
        { class: "num" },
        h(
          "span",
          { class: "meter", "aria-hidden": "true" },
          h("span", { class: "meter-fill", "data-w": Math.round((100 * a.outstanding) / share) }),
        ),
        String(a.outstanding),
      ),
      h("td", { class: "num" }, String(a.inflight)),
      h("td", { class: "num" }, String(a.concurrency)),
      h("td", { class: "seen" }, a.alive ? (seen < 1500 ? "now" : `${fmtDuration(seen)} ago`) : "gone"),
    );
  });
  if (rows.length === 0) rows.push(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No agent has joined yet.")));
  $("agents").tBodies[0].replaceChildren(...rows);
  // Widths through the CSSOM: the CSP allows no style attributes.
  for (const el of document.querySelectorAll("#agents .meter-fill")) el.style.width = `${el.dataset.w}%`;
}

// The metric catalog (contract/metric-catalog.ts), served as a module by the Worker.
const DISTRIBUTIONS = METRICS.filter((m) => m.kind === "distribution");
const SCALARS = METRICS.filter((m) => m.kind === "scalar");
const STATS = ["avg", "min", "p50", "p90", "p99", "max", "std"];
// Short units for the summary tiles; the table keeps AIPerf's own.
const SHORT_UNIT = { "requests/sec": "req/s", "tokens/sec": "tok/s", sec: "s", requests: "" };

export function renderResults(r) {
  const m = r.metrics ?? {};
  $("results-state").textContent = r.final ? "final" : "live, partial";
  $("results-state").dataset.final = String(Boolean(r.final));
  $("scalars").replaceChildren(
    ...SCALARS.map(({ tag, label }) => kpi(tag, label, fmt(m[tag]?.avg, SHORT_UNIT[m[tag]?.unit] ?? m[tag]?.unit), label)),
  );
  $("metrics").tBodies[0].replaceChildren(
    ...DISTRIBUTIONS.map(({ tag, label }) => {
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
}

/** The grace-window banner: seconds left until the run's storage is wiped, then gone. */
export function renderWipe(wipeAt, serverNow) {
  const banner = $("wipe");
  if (!wipeAt) {
    banner.hidden = true;
    return;
  }
  const left = Date.parse(wipeAt) - serverNow;
  banner.hidden = false;
  banner.dataset.wiped = String(left <= 0);
  if (left > 0) {
    $("wipe-text").replaceChildren(
      "Results are wiped from the server in ",
      h("strong", { id: "wipe-in" }, fmtDuration(left)),
      ". Download them before then.",
    );
  } else {
    $("wipe-text").textContent =
      "The run has been wiped from the server. This page keeps what it last showed; the JSON download still works from it.";
  }
}

export function renderConnection(mode, text) {
  const el = $("conn");
  el.dataset.mode = mode;
  el.textContent = text;
}

export function showNotice(text) {
  const el = $("notice");
  el.hidden = !text;
  el.textContent = text ?? "";
}
