// The experiment page (/experiments/:id#token=…) in a real headless Chromium against a
// real `wrangler dev`: a sweep whose every level's run is worked by the test's own
// external agent (drive.ts), one level at a time, so the test decides when each level
// ends and can watch the page follow: a level's row turns complete and the next one runs
// without a reload, the Pareto charts gain a point per level, and each level links to its
// run's dashboard with the same read token, which opens it. The server ends every event
// stream after 3 s (SSE_MAX_SECONDS), so the page follows over several streams.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "./browser.ts";
import { DEV_API_TOKEN, api, e2eServer } from "./dev-server.ts";
import { drive } from "./drive.ts";

const ARTIFACTS = join(process.cwd(), "test-artifacts");
// The few browser globals the page functions below use (this file is typechecked for Node).
interface BrowserElement {
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
}
interface BrowserCanvas {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}
declare const document: { getElementById(id: string): BrowserElement | null; querySelector(s: string): BrowserElement | null };

const server = e2eServer({ SSE_MAX_SECONDS: "3" });
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  await server.start();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server.dispose();
});

function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  return problems;
}

const dataset = (page: Page, selector: string, key: string) =>
  page.$eval(selector, (el, k) => (el as unknown as BrowserElement).dataset[k] ?? "", key);

/** Pixels of a chart's canvas drawn in a saturated colour: points and the front, not axes or grid. */
function colouredPixels(page: Page, chartId: string): Promise<number> {
  return page.$eval(`#${chartId} canvas`, (c) => {
    const canvas = c as unknown as BrowserCanvas;
    const { data } = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
      if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
    return n;
  });
}

interface Level {
  level: number;
  status: string;
  runId: string | null;
  metrics: Record<string, Record<string, number | null>> | null;
}

async function summary(id: string, token: string): Promise<{ phase: string; current: { runId: string | null } | null; levels: Level[] }> {
  const res = await api(server.url, "GET", `/v1/experiments/${id}`, token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** The run of the level under way, once it exists. */
async function currentRunId(id: string, token: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const runId = (await summary(id, token)).current?.runId;
    if (runId) return runId;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("no level started");
}

/** The levels on the Pareto front, computed here from the summary: none beats them on both axes. */
function front(levels: Level[], x: (l: Level) => number | null, lowerXIsBetter: boolean): number[] {
  const pts = levels
    .map((l) => ({ level: l.level, x: x(l), y: l.metrics?.output_token_throughput?.avg ?? null }))
    .filter((p): p is { level: number; x: number; y: number } => p.x !== null && p.y !== null);
  const better = (a: number, b: number) => (lowerXIsBetter ? a <= b : a >= b);
  return pts
    .filter((p) => !pts.some((q) => q !== p && better(q.x, p.x) && q.y >= p.y && (q.x !== p.x || q.y > p.y)))
    .sort((a, b) => a.x - b.x)
    .map((p) => p.level);
}

describe("the experiment page", () => {
  it("is served with the run dashboard's strict policy, its modules come from the Worker, and a malformed id is a 404", async () => {
    const page = await fetch(`${server.url}/experiments/${"0".repeat(64)}`);
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/https?:\/\//);
    for (const [file, type] of [
      ["experiment.ui.js", "text/javascript"],
      ["experiment-charts.ui.js", "text/javascript"],
      ["experiment-render.ui.js", "text/javascript"],
      ["experiment.ui.css", "text/css"],
    ] as const) {
      const res = await fetch(`${server.url}/assets/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get("content-type"), file).toMatch(new RegExp(`^${type}`));
    }
    expect((await fetch(`${server.url}/experiments/not-an-experiment`)).status).toBe(404);
  });

  it("follows a sweep live, level by level, draws a point per level on both Pareto charts, and links each level to its run's dashboard", async () => {
    const created = await api(server.url, "POST", "/v1/experiments", DEV_API_TOKEN, {
      base: {
        target: { url: "builtin:mock", model: "mock-llm", stream: true },
        stop: { requests: 16 },
        agents: { edge: 0 }, // the test's own agent works each level's run
      },
      levels: { concurrency: [1, 2, 4] },
      graceSeconds: 60,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, readToken, agentToken } = created.body as { id: string; readToken: string; agentToken: string };

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = watchProblems(page);
    const urls: string[] = [];
    page.on("request", (req) => urls.push(req.url()));
    await page.goto(`${server.url}/experiments/${id}#token=${readToken}`);
    await page.waitForSelector('#levels tr[data-level="1"][data-status="running"]');
    expect(await page.$$eval("#levels tbody tr", (rows) => rows.map((r) => (r as unknown as BrowserElement).dataset.level))).toEqual([
      "1",
      "2",
      "4",
    ]);

    // Level 1 ends: its row turns complete and level 2 runs, on the page as it is.
    const run1 = await currentRunId(id, readToken);
    await drive(server.url, { id: run1, readToken, agentToken }, { concurrency: 1, pauseMs: 20, perReport: 1 });
    await page.waitForSelector('#levels tr[data-level="2"][data-status="running"]');
    expect(await dataset(page, '#levels tr[data-level="1"]', "status")).toBe("complete");
    await page.waitForFunction(() => document.getElementById("chart-pareto-latency")!.dataset.points === "1");
    await page.screenshot({ path: join(ARTIFACTS, "experiment-running.png"), fullPage: true, animations: "disabled" });

    for (const concurrency of [2, 4]) {
      const runId = await currentRunId(id, readToken);
      await drive(server.url, { id: runId, readToken, agentToken }, { concurrency, pauseMs: 20, perReport: concurrency });
      // The next level's run exists only once this one completed and was recorded.
      if (concurrency === 2) await page.waitForSelector('#levels tr[data-level="4"][data-status="running"]');
    }
    await page.waitForSelector('#phase[data-phase="complete"]');
    await page.waitForSelector('#conn[data-mode="final"]');

    const final = await summary(id, readToken);
    expect(final.levels.map((l) => [l.level, l.status])).toEqual([
      [1, "complete"],
      [2, "complete"],
      [4, "complete"],
    ]);
    // A point per level on each chart, drawn, and the front the summary's figures make.
    for (const chart of ["chart-pareto-latency", "chart-pareto-user"]) {
      expect(await dataset(page, `#${chart}`, "points"), chart).toBe("3");
      expect(await colouredPixels(page, chart), chart).toBeGreaterThan(50);
    }
    const ttft = (l: Level) => l.metrics?.time_to_first_token?.p99 ?? null;
    const perUser = (l: Level) => {
      const itl = l.metrics?.inter_token_latency?.p50;
      return typeof itl === "number" && itl > 0 ? 1000 / itl : null;
    };
    expect(await dataset(page, "#chart-pareto-latency", "front")).toBe(front(final.levels, ttft, true).join(","));
    expect(await dataset(page, "#chart-pareto-user", "front")).toBe(front(final.levels, perUser, false).join(","));

    // Each level's figures as the summary has them, and a link to its run with the same token.
    const links = await page.$$eval("#levels tbody tr", (rows) =>
      rows.map(
        (r) => (r as unknown as { querySelector(s: string): BrowserElement | null }).querySelector("a")?.getAttribute("href") ?? null,
      ),
    );
    expect(links).toEqual(final.levels.map((l) => `/runs/${l.runId}#token=${encodeURIComponent(readToken)}`));
    const tokS = await page.$$eval('#levels tbody td[data-col="output_token_throughput"]', (tds) =>
      tds.map((td) => Number((td as unknown as BrowserElement).dataset.value)),
    );
    expect(tokS).toEqual(final.levels.map((l) => l.metrics?.output_token_throughput?.avg));
    await page.screenshot({ path: join(ARTIFACTS, "experiment.png"), fullPage: true, animations: "disabled" });

    // The token reached the server only in headers, never in a URL.
    expect(urls.filter((u) => u.includes(readToken))).toEqual([]);
    expect(problems).toEqual([]);

    // The link opens the level's run dashboard, which the experiment's read token reads.
    await page.click('#levels tr[data-level="2"] a');
    await page.waitForSelector('#phase[data-phase="complete"]');
    expect(page.url()).toContain(`/runs/${final.levels[1]!.runId}#token=`);
    expect(await page.textContent("#progress-label")).toContain("16 / 16 requests");
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);

  it("shows a finished capacity search: each level's SLO verdict, the answer marked, and the front its edge agents' figures make", async () => {
    const created = await api(server.url, "POST", "/v1/experiments", DEV_API_TOKEN, {
      base: {
        target: { url: "builtin:mock", stream: true, mock: { ttftMs: 5, itlMs: 1 } },
        workload: { outputTokens: { mean: 8 } },
        stop: { requests: 20 },
      },
      search: { over: "concurrency", slo: ["time_to_first_token.p99<60000"], min: 1, max: 4 },
      graceSeconds: 60,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id, readToken } = created.body as { id: string; readToken: string };
    let final = await summary(id, readToken);
    for (let i = 0; i < 300 && final.phase !== "complete"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      final = await summary(id, readToken);
    }
    expect(final.phase).toBe("complete");

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = watchProblems(page);
    await page.goto(`${server.url}/experiments/${id}#token=${readToken}`);
    await page.waitForSelector('#conn[data-mode="final"]');
    const verdicts = await page.$$eval("#levels tbody tr", (rows) =>
      rows.map((r) => [(r as unknown as BrowserElement).dataset.level, (r as unknown as BrowserElement).dataset.ok]),
    );
    expect(verdicts).toEqual([
      ["1", "true"],
      ["2", "true"],
      ["4", "true"],
    ]);
    expect(await page.textContent('#levels tr[data-level="4"] .verdict')).toBe("pass · best");
    expect(await page.textContent('[data-kpi="best"] dd')).toBe("concurrency 4");
    expect(await page.textContent('[data-kpi="end"] dd')).toBe("max passed");
    const ttft = (l: Level) => l.metrics?.time_to_first_token?.p99 ?? null;
    expect(await dataset(page, "#chart-pareto-latency", "points")).toBe("3");
    expect(await dataset(page, "#chart-pareto-latency", "front")).toBe(front(final.levels, ttft, true).join(","));
    await page.screenshot({ path: join(ARTIFACTS, "experiment-search.png"), fullPage: true, animations: "disabled" });
    expect(problems).toEqual([]);
    await context.close();
  }, 90_000);

  it("says what is wrong, and shows no empty sections, without a token or with one that does not open the experiment", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/experiments/${"a".repeat(64)}`);
    await page.waitForSelector('#phase[data-phase="gone"]');
    expect(await page.textContent("#notice")).toContain("read token");
    const other = await context.newPage();
    await other.goto(`${server.url}/experiments/${"a".repeat(64)}#token=epr_wrong`);
    await other.waitForSelector('#phase[data-phase="gone"]');
    expect(await other.textContent("#phase")).toMatch(/not found|no access/);
    expect(await other.textContent("#notice")).toMatch(/No such experiment|not valid for this experiment/);
    expect(await other.isVisible("#levels")).toBe(false);
    await context.close();
  });
});
