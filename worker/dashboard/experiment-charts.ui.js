// Browser side: the experiment page's two Pareto charts, drawn with uPlot (the global
// `uPlot`, loaded as a classic script before the modules), one point per level that has
// results:
//
// - output tokens/s against TTFT p99 (request latency p99 when no level streamed): how
//   much a level delivers, against how long its slowest users wait for the first token;
// - output tokens/s against tokens/s per user: the serving trade-off, total throughput
//   against the speed each user sees. Per user is the level's
//   output_token_throughput_per_user p50 when the summary has it, else 1000 / ITL p50,
//   which is the same figure: per user is 1000 / ITL request by request, and a median
//   goes through a decreasing function unchanged.
//
// Each point is labelled with its level; a line joins the Pareto front: the levels no
// other level beats on both axes (more tokens/s and a lower TTFT p99, or more tokens/s
// and more per user). uPlot draws in x order, so the points are sorted by x; the front is
// a second series, null off the front, with its gaps spanned.
//
// Each chart's figure carries data-points (the levels drawn) and data-front (the levels
// on the front, comma-separated), so a test or a person with devtools can read them.

import { fromZero } from "./charts.ui.js";
import { isNum } from "./render.ui.js";

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

const fig = (m, tag, stat) => (isNum(m?.[tag]?.[stat]) ? m[tag][stat] : null);

/** Tokens/s each user sees at a level (see above), or null. */
export function perUser(metrics) {
  const direct = fig(metrics, "output_token_throughput_per_user", "p50");
  if (direct !== null) return direct;
  const itl = fig(metrics, "inter_token_latency", "p50");
  return itl !== null && itl > 0 ? 1000 / itl : null;
}

/** The latency the first chart plots: TTFT p99, or request latency p99 when no level has a TTFT. */
export function latencyAxis(levels) {
  const ttft = levels.some((l) => fig(l.metrics, "time_to_first_token", "p99") !== null);
  return ttft ? { tag: "time_to_first_token", name: "TTFT p99" } : { tag: "request_latency", name: "request latency p99" };
}

/**
 * The points of one chart, sorted by x, and which of them are on the Pareto front. `x` of
 * a level, or null; `lowerXIsBetter` says which way x improves. y is output tokens/s.
 */
export function paretoPoints(levels, x, lowerXIsBetter) {
  const pts = levels
    .map((l) => ({ level: l.level, x: x(l), y: fig(l.metrics, "output_token_throughput", "avg") }))
    .filter((p) => p.x !== null && p.y !== null)
    .sort((a, b) => a.x - b.x || b.y - a.y);
  // From the better end of x (and of equal x, the higher y first): a point is on the front
  // when it beats the y of every point before it.
  const order = lowerXIsBetter ? pts : [...pts].sort((a, b) => b.x - a.x || b.y - a.y);
  let best = Number.NEGATIVE_INFINITY;
  for (const p of order) {
    p.front = p.y > best;
    if (p.front) best = p.y;
  }
  return pts;
}

function chartData(pts) {
  return [pts.map((p) => p.x), pts.map((p) => p.y), pts.map((p) => (p.front ? p.y : null))];
}

/** Draws each point's level beside it, in the canvas's own pixels. */
function labelHook(getPts, colour) {
  return (u) => {
    const pts = getPts();
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = colour;
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    ctx.textBaseline = "bottom";
    for (const p of pts) {
      const cx = u.valToPos(p.x, "x", true);
      const cy = u.valToPos(p.y, "y", true);
      ctx.fillText(String(p.level), cx + 9 * devicePixelRatio, cy - 7 * devicePixelRatio);
    }
    ctx.restore();
  };
}

function axis(t, extra = {}) {
  const font = "11px system-ui, sans-serif";
  return { stroke: t.text, grid: { stroke: t.grid, width: 1 }, ticks: { stroke: t.grid, width: 1 }, font, labelFont: font, ...extra };
}

function plotHeight(width) {
  return width < 500 ? 220 : 260;
}

function createChart(figureId, xLabel, t) {
  const figure = document.getElementById(figureId);
  const el = figure.querySelector(".plot");
  const state = { pts: [] };
  const width = Math.max(200, el.clientWidth);
  const u = new uPlot(
    {
      width,
      height: plotHeight(width),
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: fromZero }, y: { range: fromZero } },
      series: [
        { label: xLabel },
        {
          label: "levels",
          stroke: t.points,
          width: 0,
          paths: () => null,
          points: { show: true, size: 9, space: 0, fill: t.points, stroke: t.points },
        },
        // A ring around each point on the front, so a front of one point shows too.
        {
          label: "Pareto front",
          stroke: t.front,
          width: 2,
          spanGaps: true,
          points: { show: true, size: 16, space: 0, width: 2, fill: "transparent", stroke: t.front },
        },
      ],
      axes: [axis(t, { label: xLabel, labelSize: 18 }), axis(t, { size: 62, label: "output tok/s", labelSize: 16 })],
      hooks: { draw: [labelHook(() => state.pts, t.text)] },
    },
    [[], [], []],
    el,
  );
  return { figure, el, u, state };
}

export function createParetoCharts() {
  const t = {
    text: cssVar("--muted", "#6b7280"),
    grid: cssVar("--grid", "rgba(0,0,0,0.07)"),
    points: cssVar("--c-tokens", "#7c3aed"),
    front: cssVar("--c-ok", "#059669"),
  };
  const latency = createChart("chart-pareto-latency", "p99 (ms)", t);
  const user = createChart("chart-pareto-user", "tokens/s per user", t);
  const charts = [latency, user];
  const ro = new ResizeObserver(() => {
    for (const c of charts) {
      const width = Math.max(200, c.el.clientWidth);
      if (width !== c.u.width) c.u.setSize({ width, height: plotHeight(width) });
    }
  });
  for (const c of charts) ro.observe(c.el);

  const draw = (c, pts) => {
    c.state.pts = pts;
    c.u.setData(chartData(pts));
    c.figure.dataset.points = String(pts.length);
    c.figure.dataset.front = pts
      .filter((p) => p.front)
      .map((p) => p.level)
      .join(",");
  };

  return {
    /** Redraws both charts from the summary's levels. */
    update(levels) {
      const axisOf = latencyAxis(levels);
      // The caption names the latency drawn; the axis says only "p99 (ms)".
      latency.figure.querySelector("[data-axis]").textContent = axisOf.name;
      draw(
        latency,
        paretoPoints(levels, (l) => fig(l.metrics, axisOf.tag, "p99"), true),
      );
      draw(
        user,
        paretoPoints(levels, (l) => perUser(l.metrics), false),
      );
    },
  };
}
