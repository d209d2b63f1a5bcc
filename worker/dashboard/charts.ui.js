// Browser side: the five charts, drawn with uPlot (loaded as a classic script before
// this module, as the global `uPlot`).
//
// Over time, from the results document's per-second buckets: throughput, and latency
// and TTFT percentiles. Each bucket is drawn at its end (the bucket [3, 4) at 4 s), on
// the clock of the measured period, so the last point is as recent as the data.
// Throughput is a moving average over SMOOTH_SECONDS: a steady load settles requests in
// waves (a concurrency of 8 finishes 8 at a time), and whether 3 or 4 waves land in one
// second depends on where the second's edge falls, so per-second counts zig-zag around
// the true rate. Distributions, from the whole-run percentiles (the document holds
// percentiles, not samples): TTFT and ITL as percentile curves, with the x axis spaced by
// "nines" (x = log10(100 / (100 - p)): p50 ≈ 0.3, p90 = 1, p99 = 2, p99.9 = 3), the usual
// way to show a latency tail without squashing it against the right edge.
//
// While the run goes on, a bucket is drawn once a report interval has passed since it
// ended (agents report about once a second, so a younger bucket is still filling), and
// the x axis runs to now, so the chart keeps pace with the elapsed time.
//
// Each chart's container carries data-points (the number of values drawn, so a test or a
// person with devtools can tell an empty chart from a flat one) and data-last-x (the x of
// the newest point, in seconds).

/** The throughput chart's moving-average window. */
export const SMOOTH_SECONDS = 5;
/** Agents report once a second: a bucket younger than this is still being reported. */
const REPORT_LAG_SECONDS = 1;

const PERCENTILES = [
  ["p1", 1],
  ["p5", 5],
  ["p10", 10],
  ["p25", 25],
  ["p50", 50],
  ["p75", 75],
  ["p90", 90],
  ["p95", 95],
  ["p99", 99],
  ["p999", 99.9],
];
const nines = (p) => Math.log10(100 / (100 - p));
const NINES_TICKS = [
  [0, "min"],
  [nines(50), "p50"],
  [nines(90), "p90"],
  [nines(99), "p99"],
  [nines(99.9), "p99.9"],
];

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function theme() {
  return {
    text: cssVar("--muted", "#6b7280"),
    grid: cssVar("--grid", "rgba(0,0,0,0.07)"),
    p50: cssVar("--c-p50", "#2563eb"),
    p90: cssVar("--c-p90", "#d97706"),
    p99: cssVar("--c-p99", "#dc2626"),
    ok: cssVar("--c-ok", "#059669"),
    tokens: cssVar("--c-tokens", "#7c3aed"),
    fail: cssVar("--c-p99", "#dc2626"),
  };
}

// Tick steps for the seconds axes: whole seconds, never 0.25 s of a per-second series.
const SECOND_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];

function axis(t, extra = {}) {
  const font = "11px system-ui, sans-serif";
  return { stroke: t.text, grid: { stroke: t.grid, width: 1 }, ticks: { stroke: t.grid, width: 1 }, font, labelFont: font, ...extra };
}

const line = (label, stroke, extra = {}) => ({ label, stroke, width: 2, points: { size: 5, fill: stroke }, ...extra });

/**
 * The buckets to draw, from the first to the last, one per bucketSeconds (a second in
 * which nothing ended counts as 0), as `ends` (x of each, its end) and `at` (bucket by
 * start); `until` is where the x axis ends: now (the measured period so far, from
 * benchmark_duration) while the run goes on, else the last bucket's end.
 */
export function timeline(r) {
  const ts = r.timeseries;
  const bs = ts?.bucketSeconds || 1;
  const buckets = [...(ts?.buckets ?? [])].sort((a, b) => a.t - b.t);
  const measured = r.metrics?.benchmark_duration?.avg;
  const now = typeof measured === "number" && Number.isFinite(measured) ? measured : null;
  // Buckets by their index (start / width): starts summed in floating point drift off the
  // starts as written (0.1 + 0.1 + 0.1 is 0.30000000000000004), and a lookup by start missed.
  const index = (t) => Math.round(t / bs);
  const byIndex = new Map(buckets.map((b) => [index(b.t), b]));
  const at = { get: (t) => byIndex.get(index(t)) };
  const starts = [];
  if (buckets.length > 0) {
    const last = index(buckets[buckets.length - 1].t);
    for (let i = index(buckets[0].t); i <= last; i++) {
      const t = Math.round(i * bs * 1e6) / 1e6;
      if (!r.final && now !== null && t + bs > now - REPORT_LAG_SECONDS) break;
      starts.push(t);
    }
  }
  const ends = starts.map((t) => Math.round((t + bs) * 1e6) / 1e6);
  const lastEnd = ends.length > 0 ? ends[ends.length - 1] : 0;
  const until = r.final || now === null ? lastEnd : Math.max(lastEnd, now);
  return { bs, starts, ends, at, until };
}

/** Per-second rates of `counts` (one per bucket), each averaged over the window that ends with it. */
export function movingRate(counts, bs) {
  const n = Math.max(1, Math.round(Math.max(SMOOTH_SECONDS, bs) / bs));
  return counts.map((_, i) => {
    const from = Math.max(0, i - n + 1);
    let sum = 0;
    for (let j = from; j <= i; j++) sum += counts[j];
    return sum / ((i - from + 1) * bs);
  });
}

/** A y scale that starts at 0: rates and latencies are read against zero, not against their minimum. */
export function fromZero(_u, _min, max) {
  return [0, Number.isFinite(max) && max > 0 ? max * 1.1 : 1];
}

/** x values with a last, empty point at `until`, so the axis reaches it while no data does. */
function withUntil(tl, series) {
  if (tl.ends.length > 0 && tl.until > tl.ends[tl.ends.length - 1]) return [[...tl.ends, tl.until], ...series.map((ys) => [...ys, null])];
  return [tl.ends, ...series];
}

/** The throughput chart's data: requests/s, failed/s and output tokens/s. */
export function throughputData(r) {
  const tl = timeline(r);
  const count = (k) => tl.starts.map((t) => tl.at.get(t)?.[k] ?? 0);
  return withUntil(tl, [
    movingRate(count("completed"), tl.bs),
    movingRate(count("failed"), tl.bs),
    movingRate(count("outputTokens"), tl.bs),
  ]);
}

const SPECS = [
  {
    id: "chart-throughput",
    options: (t) => ({
      scales: { x: { time: false }, y: { range: fromZero }, tok: { range: fromZero } },
      series: [
        {},
        line("requests/s", t.ok, { fill: `${t.ok}1f` }),
        line("failed/s", t.fail),
        line("output tokens/s", t.tokens, { scale: "tok", dash: [6, 4] }),
      ],
      axes: [
        axis(t, { label: "seconds", labelSize: 18, incrs: SECOND_STEPS }),
        axis(t, { size: 58, label: "req/s", labelSize: 16 }),
        axis(t, { scale: "tok", side: 1, grid: { show: false }, size: 62, label: "tok/s", labelSize: 16 }),
      ],
    }),
    data: throughputData,
  },
  ...["latency", "ttft"].map((key) => ({
    id: key === "latency" ? "chart-latency" : "chart-ttft",
    options: (t) => ({
      scales: { x: { time: false }, y: { range: fromZero } },
      series: [{}, line("p50", t.p50), line("p90", t.p90), line("p99", t.p99)],
      axes: [axis(t, { label: "seconds", labelSize: 18, incrs: SECOND_STEPS }), axis(t, { size: 48 })],
    }),
    data(r) {
      const tl = timeline(r);
      const q = (p) => tl.starts.map((t) => tl.at.get(t)?.[key]?.[p] ?? null);
      return withUntil(tl, [q("p50"), q("p90"), q("p99")]);
    },
  })),
  ...[
    ["time_to_first_token", "chart-ttft-dist", "TTFT", (t) => t.p50],
    ["inter_token_latency", "chart-itl-dist", "ITL", (t) => t.tokens],
  ].map(([tag, id, label, colour]) => ({
    id,
    options: (t) => ({
      scales: { x: { time: false, range: [0, 3.05] } },
      series: [{}, line(`${label} ms`, colour(t), { fill: `${colour(t)}1a` })],
      axes: [
        // "min" and "p50" sit 30 px apart on a phone: there, "min" goes.
        axis(t, {
          splits: () => NINES_TICKS.map(([x]) => x),
          values: (u) => NINES_TICKS.map(([, l], i) => (i === 0 && u.bbox.width / devicePixelRatio < 420 ? "" : l)),
        }),
        axis(t, { size: 48 }),
      ],
    }),
    data(r) {
      const m = r.metrics?.[tag];
      if (!m || !m.count) return [[], []];
      const pts = [[0, m.min], ...PERCENTILES.map(([k, p]) => [nines(p), m[k]])].filter(([, v]) => typeof v === "number");
      return [pts.map(([x]) => x), pts.map(([, v]) => v)];
    },
  })),
];

const drawn = (v) => v !== null && v !== undefined;
const countPoints = (data) => data.slice(1).reduce((n, ys) => n + ys.filter(drawn).length, 0);
/** The x of the newest point with a value; "" when nothing is drawn. */
function lastX(data) {
  for (let i = data[0].length - 1; i >= 0; i--) if (data.slice(1).some((ys) => drawn(ys[i]))) return String(data[0][i]);
  return "";
}

function plotHeight(width) {
  return width < 500 ? 190 : 230;
}

export function createCharts() {
  const t = theme();
  const charts = SPECS.map((spec) => {
    const figure = document.getElementById(spec.id);
    const el = figure.querySelector(".plot");
    const width = Math.max(200, el.clientWidth);
    const opts = {
      width,
      height: plotHeight(width),
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      ...spec.options(t),
    };
    const empty = [[], ...opts.series.slice(1).map(() => [])];
    const u = new uPlot(opts, empty, el);
    return { spec, figure, el, u };
  });
  // Charts follow their container's width (phone rotation, window resizes).
  const ro = new ResizeObserver(() => {
    for (const c of charts) {
      const width = Math.max(200, c.el.clientWidth);
      if (width !== c.u.width) c.u.setSize({ width, height: plotHeight(width) });
    }
  });
  for (const c of charts) ro.observe(c.el);

  return {
    update(results) {
      for (const c of charts) {
        const data = c.spec.data(results);
        c.u.setData(data);
        c.figure.dataset.points = String(countPoints(data));
        c.figure.dataset.lastX = lastX(data);
      }
    },
  };
}
