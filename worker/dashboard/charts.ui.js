// Browser side: the five charts, drawn with uPlot (loaded as a classic script before
// this module, as the global `uPlot`).
//
// Over time, from the results document's per-second buckets: throughput, and latency
// and TTFT percentiles. Distributions, from the whole-run percentiles (the document
// holds percentiles, not samples): TTFT and ITL as percentile curves, with the x axis
// spaced by "nines" (x = log10(100 / (100 - p)): p50 ≈ 0.3, p90 = 1, p99 = 2, p99.9 = 3),
// the usual way to show a latency tail without squashing it against the right edge.
//
// Each chart's container carries data-points: the number of values drawn, so a test
// (or a person with devtools) can tell an empty chart from a flat one.

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

/** The bucket starts from first to last, one per bucketSeconds: seconds nothing ended in count as 0. */
function timeAxis(ts) {
  const bs = ts?.bucketSeconds || 1;
  const buckets = [...(ts?.buckets ?? [])].sort((a, b) => a.t - b.t);
  if (buckets.length === 0) return { bs, xs: [], at: new Map() };
  const at = new Map(buckets.map((b) => [b.t, b]));
  const xs = [];
  for (let t = buckets[0].t; t <= buckets[buckets.length - 1].t; t += bs) xs.push(t);
  return { bs, xs, at };
}

const SPECS = [
  {
    id: "chart-throughput",
    options: (t) => ({
      scales: { x: { time: false }, tok: {} },
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
    data(r) {
      const { bs, xs, at } = timeAxis(r.timeseries);
      // While the run goes on, the newest second is still filling: its rate would dip.
      const shown = r.final || xs.length < 2 ? xs : xs.slice(0, -1);
      const get = (x, k) => (at.get(x)?.[k] ?? 0) / bs;
      return [shown, shown.map((x) => get(x, "completed")), shown.map((x) => get(x, "failed")), shown.map((x) => get(x, "outputTokens"))];
    },
  },
  ...["latency", "ttft"].map((key) => ({
    id: key === "latency" ? "chart-latency" : "chart-ttft",
    options: (t) => ({
      scales: { x: { time: false } },
      series: [{}, line("p50", t.p50), line("p90", t.p90), line("p99", t.p99)],
      axes: [axis(t, { label: "seconds", labelSize: 18, incrs: SECOND_STEPS }), axis(t, { size: 48 })],
    }),
    data(r) {
      const { xs, at } = timeAxis(r.timeseries);
      const q = (x, p) => at.get(x)?.[key]?.[p] ?? null;
      return [xs, xs.map((x) => q(x, "p50")), xs.map((x) => q(x, "p90")), xs.map((x) => q(x, "p99"))];
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

const countPoints = (data) => data.slice(1).reduce((n, ys) => n + ys.filter((v) => v !== null && v !== undefined).length, 0);

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
      }
    },
  };
}
