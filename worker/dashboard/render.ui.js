// Browser side: renders a status snapshot or a results document into the page's
// sections. Every value from the server goes in through textContent, never innerHTML:
// agent names and error codes come from agents, not from us.

export const $ = (id) => document.getElementById(id);

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

export const isNum = (v) => typeof v === "number" && Number.isFinite(v);

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

export function kpi(key, label, value, title) {
  return h("div", { class: "kpi", "data-kpi": key, title }, h("dt", {}, label), h("dd", {}, value));
}

export function renderProgress(s, spec, now) {
  const { frac, label } = progressOf(s, spec, now);
  const bar = $("progress");
  bar.dataset.completed = String(s.counts.completed);
  bar.dataset.phase = s.phase;
  // A <progress> element: its value is an attribute, so no inline style is involved, and
  // it is drawn natively where a page's colours are overridden (forced colours). Without a
  // value it shows as indeterminate.
  if (frac === null) bar.removeAttribute("value");
  else bar.value = Math.round(frac * 1000);
  $("progress-label").textContent = frac === null ? label : `${label} · ${Math.floor(frac * 100)}%`;

  const c = s.counts;
  const l = s.live ?? {};
  const elapsed = s.startedAt ? (s.completedAt ? Date.parse(s.completedAt) : now) - Date.parse(s.startedAt) : null;
  // Requests in flight are what agents last reported sending; credits held also count
  // what agents hold ahead (lease depth) and results not yet reported, so they run higher.
  const inflight = s.phase === "complete" ? 0 : (s.agents ?? []).reduce((n, a) => n + (a.inflight ?? 0), 0);
  $("kpis").replaceChildren(
    kpi("completed", "Completed", fmt(c.completed)),
    kpi("failed", "Failed", fmt(c.failed), "Measured requests that failed (errors below)"),
    ...(c.abandoned > 0
      ? [kpi("abandoned", "Abandoned", fmt(c.abandoned), "Credits abandoned by a force stop, a dead agent or the drain timeout")]
      : []),
    kpi("inflight", "In flight", fmt(inflight), "Requests in flight, as the agents last reported"),
    kpi(
      "credits",
      "Credits held",
      fmt(c.outstanding),
      "Credits granted to agents and not yet settled: in flight, held ahead, or settled but not yet reported",
    ),
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
        h("meter", { class: "meter", min: 0, max: share, value: a.outstanding, "aria-hidden": "true" }),
        String(a.outstanding),
      ),
      h("td", { class: "num" }, String(a.inflight)),
      h("td", { class: "num" }, String(a.concurrency)),
      h("td", { class: "seen" }, a.alive ? (seen < 1500 ? "now" : `${fmtDuration(seen)} ago`) : "gone"),
    );
  });
  if (rows.length === 0) rows.push(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No agent has joined yet.")));
  $("agents").tBodies[0].replaceChildren(...rows);
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

const GONE_LABEL = { 404: "not found", 401: "no access", 403: "no access" };

/**
 * The page has nothing to show: no token, a token that does not open the run, or a run
 * already wiped. The badge says so instead of "loading", and the sections that would
 * stay empty (downloads included: there is nothing left to download) are hidden.
 */
export function renderGone(status, text) {
  const badge = $("phase");
  badge.dataset.phase = "gone";
  badge.dataset.outcome = "";
  badge.textContent = GONE_LABEL[status] ?? "unavailable";
  document.body.dataset.state = "gone";
  showNotice(text);
}
