// The dashboard in a real headless Chromium against a real `wrangler dev`: the page
// follows a run that an external agent (plain fetch) drives slowly, shows progress and
// per-agent credits while it runs, then the final results, charts with data, the wipe
// countdown and working downloads. Screenshots (desktop and phone) are saved to
// test-artifacts/ for people to look at. The server ends every event stream after 3 s
// (SSE_MAX_SECONDS), so each live run here is followed over several streams.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launchChromium } from "./browser.ts";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, e2eServer } from "./dev-server.ts";
import { createRun as createRunOn, drive as driveOn } from "./drive.ts";
import type { DriveOptions, Run } from "./drive.ts";

const ARTIFACTS = join(process.cwd(), "test-artifacts");
// The few browser globals that the page functions below use: this file is typechecked
// for Node, without the DOM library, and those functions run in the browser.
interface BrowserElement {
  dataset: Record<string, string | undefined>;
}
interface BrowserCanvas {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}
declare const document: { getElementById(id: string): BrowserElement | null; documentElement: { scrollWidth: number } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every event stream ends after this long with `event: reconnect`. */
const SSE_MAX_SECONDS = 3;
const server = e2eServer({ SSE_MAX_SECONDS: String(SSE_MAX_SECONDS) });
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

const createRun = (spec: Record<string, unknown>) => createRunOn(server.url, spec);
const drive = (run: Run, opts: DriveOptions) => driveOn(server.url, run, opts);

/** Console errors, uncaught exceptions and CSP violations on a page: all must stay empty. */
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

/** Pixels of a chart's canvas drawn in a saturated colour: series, not axes or grid (greys). */
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

/**
 * How far the progress bar is drawn, from its pixels: the share of its middle row that is
 * not the colour of its unfilled end (read in a blank page, from a screenshot), beside
 * the fraction its value says.
 */
async function progressDrawn(page: Page): Promise<{ value: number; filled: number }> {
  const value = await page.$eval("#progress", (el) => Number((el as any).value) / Number((el as any).max));
  const png = (await page.locator("#progress").screenshot({ animations: "disabled" })).toString("base64");
  const blank = await page.context().newPage();
  const filled = await blank.evaluate(async (b64: string) => {
    const d = document as any;
    const img = new (globalThis as any).Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const canvas = d.createElement("canvas");
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const y = Math.floor(img.height / 2);
    // Inside the rounded border: a few pixels in from each end.
    const from = Math.ceil(img.height / 2);
    const to = img.width - from;
    const row = ctx.getImageData(0, y, img.width, 1).data;
    const track = [row[(to - 1) * 4], row[(to - 1) * 4 + 1], row[(to - 1) * 4 + 2]];
    let n = 0;
    for (let x = from; x < to; x++) {
      const diff = Math.abs(row[x * 4] - track[0]) + Math.abs(row[x * 4 + 1] - track[1]) + Math.abs(row[x * 4 + 2] - track[2]);
      if (diff > 60) n++;
    }
    return n / (to - from);
  }, png);
  await blank.close();
  return { value, filled };
}

const CHARTS = ["chart-throughput", "chart-latency", "chart-ttft", "chart-ttft-dist", "chart-itl-dist"];

describe("the dashboard page", () => {
  it("is served with a strict CSP, no referrer and nosniff, and its assets come from the Worker itself", async () => {
    const id = "0".repeat(64);
    const page = await fetch(`${server.url}/runs/${id}`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/https?:\/\//); // nothing from a CDN

    for (const [file, type] of [
      ["uplot.min.js", "text/javascript"],
      ["uplot.min.css", "text/css"],
      ["dashboard.ui.js", "text/javascript"],
      ["charts.ui.js", "text/javascript"],
      ["render.ui.js", "text/javascript"],
      ["results.ui.js", "text/javascript"],
      ["downloads.ui.js", "text/javascript"],
      ["dashboard.ui.css", "text/css"],
    ] as const) {
      const res = await fetch(`${server.url}/assets/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get("content-type"), file).toMatch(new RegExp(`^${type}`));
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      const etag = res.headers.get("etag")!;
      expect((await fetch(`${server.url}/assets/${file}`, { headers: { "if-none-match": etag } })).status).toBe(304);
    }
    expect((await fetch(`${server.url}/assets/nope.js`)).status).toBe(404);
    expect((await fetch(`${server.url}/runs/not-a-run`)).status).toBe(404);
  });

  it("follows a run live over SSE: progress and per-agent credits while it runs, then the final results, charts with data, the wipe countdown and downloads", async () => {
    const run = await createRun({
      target: { url: "builtin:mock", model: "mock-llm" },
      load: { concurrency: 4 },
      stop: { requests: 60 },
      graceSeconds: 30,
      agents: { edge: 0 }, // the test's own agent is the only one
      thresholds: { "time_to_first_token.p99": "<500", "request_latency.p50": "<100" },
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = watchProblems(page);
    const urls: string[] = [];
    const unauthenticated: string[] = [];
    page.on("request", (req) => {
      urls.push(req.url());
      if (new URL(req.url()).pathname.startsWith("/v1/") && !req.headers().authorization?.startsWith("Bearer "))
        unauthenticated.push(req.url());
    });

    await page.goto(`${server.url}/runs/${run.id}#token=${run.readToken}`);
    await page.waitForSelector('#conn[data-mode="live"]');
    // Every connection mode the page shows, so the test knows it never fell back to polling.
    await page.evaluate(`(() => {
      const conn = document.getElementById("conn");
      window.modes = [conn.dataset.mode];
      new MutationObserver(() => window.modes.push(conn.dataset.mode)).observe(conn, { attributes: true });
    })()`);

    // The agent holds its credits a while before it sends them: it reports one in flight.
    const driving = drive(run, { concurrency: 4, pauseMs: 200, inflight: (held) => Math.min(held, 1) });
    await page.waitForSelector('#phase[data-phase="running"]');
    // Progress moves while the run is still running, not only at the end.
    await page.waitForFunction(() => Number(document.getElementById("progress")!.dataset.completed) > 0);
    const before = Number(await dataset(page, "#progress", "completed"));
    await page.waitForFunction((c) => {
      const p = document.getElementById("progress")!;
      return Number(p.dataset.completed) > c && p.dataset.phase === "running";
    }, before);
    // The agent's credits and its region, as the coordinator sees them.
    await page.waitForSelector('#agents tr[data-agent]:not([data-outstanding="0"])');
    // "In flight" is what the agents report sending; the credits they hold are another tile.
    await page.waitForFunction(() => {
      const kpi = (k: string) => Number((document as any).querySelector(`[data-kpi="${k}"] dd`).textContent);
      const agent = (document as any).querySelector("#agents tr[data-agent]");
      return (
        kpi("inflight") === Number(agent.dataset.inflight) &&
        kpi("credits") === Number(agent.dataset.outstanding) &&
        kpi("credits") > kpi("inflight")
      );
    });
    // The bar is drawn as far as the label says.
    const drawn = await progressDrawn(page);
    expect(drawn.value).toBeGreaterThan(0);
    expect(Math.abs(drawn.filled - drawn.value)).toBeLessThan(0.06);
    expect(await page.textContent("#agents tbody")).toContain("e2e-agent");
    await page.waitForSelector('#regions .chip[data-region="weur"]');
    // Results per region: the agent's region gets its row, with its requests and a bar.
    await page.waitForFunction(() => {
      const row = (document as any).querySelector('#region-results tr[data-region="weur"]');
      return row !== null && Number(row.children[2].dataset.value) > 0 && row.querySelector("meter") !== null;
    });
    // The charts fill in during the run, from the periodic results fetches.
    await page.waitForFunction(
      () =>
        Number(document.getElementById("chart-throughput")!.dataset.points) > 0 &&
        document.getElementById("phase")!.dataset.phase === "running",
    );
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-running.png"), fullPage: true, animations: "disabled" });

    await driving;
    await page.waitForSelector('#phase[data-phase="complete"]');
    await page.waitForSelector('#conn[data-mode="final"]');
    expect(await page.textContent("#phase")).toContain("complete");
    expect(await dataset(page, "#results-state", "final")).toBe("true");
    expect(await page.evaluate("window.modes")).not.toContain("polling");

    const final = (await api(server.url, "GET", `/v1/runs/${run.id}/results`, run.readToken)).body;
    expect(final.final).toBe(true);
    expect(Number(await dataset(page, "#progress", "completed"))).toBe(final.counts.completed);
    expect(await page.textContent("#progress-label")).toContain("60 / 60 requests");

    // Charts: every one has points, and its canvas shows them.
    for (const id of CHARTS) {
      expect(Number(await dataset(page, `#${id}`, "points")), id).toBeGreaterThan(0);
      expect(await colouredPixels(page, id), id).toBeGreaterThan(100);
    }

    // The final table: request latency p50 and p99, as the results document has them.
    for (const stat of ["p50", "p99"]) {
      const cell = `#metrics tr[data-metric="request_latency"] td[data-stat="${stat}"]`;
      expect(Number(await dataset(page, cell, "value")), stat).toBeCloseTo(final.metrics.request_latency[stat], 6);
      expect(await page.textContent(cell)).toMatch(/^\d[\d,.]*$/);
    }
    // Thresholds with their verdicts, and the failures the agent reported.
    expect(await page.$$eval("#thresholds li[data-ok]", (lis) => lis.map((li) => (li as unknown as BrowserElement).dataset.ok))).toEqual(
      final.thresholds.map((t: { ok: boolean }) => String(t.ok)),
    );
    expect(await page.isVisible("#errors-card")).toBe(true);
    expect(await page.textContent("#errors")).toContain("http_500");
    // The load delivered, and the warning that this hand-driven agent fell short of it.
    expect(await page.textContent('[data-kpi="delivered-concurrency"] dd')).toMatch(/^[\d.]+ of 4$/);
    expect(final.warnings.map((w: { code: string }) => w.code)).toContain("generator_bound");
    expect(await page.isVisible("#warnings-card")).toBe(true);
    expect(await page.textContent('#warnings li[data-code="generator_bound"]')).toContain(
      final.warnings.find((w: { code: string }) => w.code === "generator_bound").message,
    );

    // The grace window: a countdown to the wipe.
    expect(await page.isVisible("#wipe")).toBe(true);
    expect(await page.textContent("#wipe-in")).toMatch(/^\d+ s$/);

    // Downloads: four buttons; CSV, AIPerf JSON and the report come from the server with the token.
    expect(await page.$$eval("button[data-format]", (bs) => bs.map((b) => (b as unknown as BrowserElement).dataset.format))).toEqual([
      "json",
      "aiperf",
      "csv",
      "report",
    ]);
    const [report] = await Promise.all([page.waitForEvent("download"), page.click('button[data-format="report"]')]);
    expect(report.suggestedFilename()).toBe(`edgeperf-${run.id.slice(0, 12)}-report.html`);
    const reportPath = join(ARTIFACTS, "dashboard-download-report.html");
    await report.saveAs(reportPath);
    expect(readFileSync(reportPath, "utf8")).toContain(`"id":"${run.id}"`);
    const [csv] = await Promise.all([page.waitForEvent("download"), page.click('button[data-format="csv"]')]);
    expect(csv.suggestedFilename()).toMatch(/\.csv$/);
    const csvPath = join(ARTIFACTS, "dashboard-download.csv");
    await csv.saveAs(csvPath);
    expect(readFileSync(csvPath, "utf8")).toMatch(/^Metric,/);
    const [json] = await Promise.all([page.waitForEvent("download"), page.click('button[data-format="json"]')]);
    expect(json.suggestedFilename()).toMatch(/\.json$/);

    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true, animations: "disabled" });
    await otherScreenshots(run);

    // The token travelled only in headers, never in a URL sent to the server.
    expect(urls.filter((u) => u.includes(run.readToken))).toEqual([]);
    expect(unauthenticated).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });

  it("opens a new stream with Last-Event-ID when one drops or the server ends it, never falls back to polling, and never loses what it shows", async () => {
    const run = await createRun({
      target: { url: "builtin:mock", model: "mock-llm" },
      load: { concurrency: 2 },
      stop: { requests: 44 },
      graceSeconds: 30,
      agents: { edge: 0 },
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = watchProblems(page);
    const streams: Array<{ at: number; lastEventId: string | undefined }> = [];
    page.on("request", (req) => {
      if (new URL(req.url()).pathname.endsWith("/events")) streams.push({ at: Date.now(), lastEventId: req.headers()["last-event-id"] });
    });
    // The first stream drops after one event, as a flaky network would drop it.
    const snapshot = (await api(server.url, "GET", `/v1/runs/${run.id}`, run.readToken)).body;
    let dropped = false;
    await page.route("**/v1/runs/*/events", async (route) => {
      if (dropped) return route.continue();
      dropped = true;
      const body = `retry: 200\n\nid: created.5\nevent: status\ndata: ${JSON.stringify(snapshot)}\n\n`;
      await route.fulfill({ status: 200, headers: { "content-type": "text/event-stream" }, body });
    });
    await page.goto(`${server.url}/runs/${run.id}#token=${run.readToken}`);
    await page.waitForFunction(
      () => document.getElementById("conn")!.dataset.mode === "live" && document.getElementById("phase")!.dataset.phase,
    );
    // Every connection mode shown, and every count of completed requests shown.
    await page.evaluate(`(() => {
      const conn = document.getElementById("conn");
      const progress = document.getElementById("progress");
      window.modes = [conn.dataset.mode];
      window.completed = [];
      new MutationObserver(() => window.modes.push(conn.dataset.mode)).observe(conn, { attributes: true });
      new MutationObserver(() => window.completed.push(Number(progress.dataset.completed))).observe(progress, { attributes: true });
    })()`);
    const started = Date.now();
    await drive(run, { concurrency: 2, pauseMs: 300 });
    const drove = Date.now() - started;
    await page.waitForSelector('#conn[data-mode="final"]');

    const final = (await api(server.url, "GET", `/v1/runs/${run.id}/results`, run.readToken)).body;
    expect(Number(await dataset(page, "#progress", "completed"))).toBe(final.counts.completed);
    expect(await dataset(page, "#results-state", "final")).toBe("true");
    // A stream per 3 s while the agent drove the run (the last one may carry `complete`).
    expect(drove).toBeGreaterThan(2 * SSE_MAX_SECONDS * 1000);
    expect(streams.length).toBeGreaterThanOrEqual(Math.floor(drove / (SSE_MAX_SECONDS * 1000)));
    expect(streams[0]!.lastEventId).toBeUndefined();
    expect(streams[1]!.lastEventId).toBe("created.5");
    const counters = streams.slice(1).map((s) => {
      expect(s.lastEventId).toMatch(/^(created|running|draining|complete)\.\d+$/);
      return Number(s.lastEventId!.split(".")[1]);
    });
    // Each new stream carries on from the last event of the one before.
    for (let i = 1; i < counters.length; i++) expect(counters[i]).toBeGreaterThan(counters[i - 1]!);
    // Each stream from the server lives its 3 s, and the next one opens at once.
    for (let i = 2; i < streams.length; i++) {
      const gap = streams[i]!.at - streams[i - 1]!.at;
      expect(gap).toBeGreaterThan(SSE_MAX_SECONDS * 1000 - 500);
      expect(gap).toBeLessThan(SSE_MAX_SECONDS * 1000 + 1500);
    }
    expect(await page.evaluate("window.modes")).not.toContain("polling");
    const shown = (await page.evaluate("window.completed")) as number[];
    expect(shown.length).toBeGreaterThan(0);
    for (let i = 1; i < shown.length; i++) expect(shown[i]).toBeGreaterThanOrEqual(shown[i - 1]!);
    expect(problems).toEqual([]);
    await context.close();
  });

  it("tells the reader what is wrong when the token is missing or does not open the run", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const id = "ab".repeat(32);
    await page.goto(`${server.url}/runs/${id}`);
    await page.waitForSelector("#notice:not([hidden])");
    expect(await page.textContent("#notice")).toContain("#token=");
    // The badge says so too, and nothing empty is left on the page: no downloads, no charts.
    expect(await page.textContent("#phase")).toBe("no access");
    expect(await page.isVisible("#downloads")).toBe(false);
    expect(await page.isVisible("#chart-throughput")).toBe(false);
    const second = await context.newPage();
    await second.goto(`${server.url}/runs/${id}#token=epr_not-a-real-token`);
    // A token that is not the run's own gets a 404, like a run that does not exist.
    await second.waitForFunction(() =>
      (document.getElementById("notice") as unknown as { textContent: string }).textContent.includes("No such run"),
    );
    expect(await dataset(second, "#conn", "mode")).toBe("offline");
    expect(await second.textContent("#phase")).toBe("not found");
    expect(await second.isVisible('button[data-format="json"]')).toBe(false);
    await context.close();
  });

  it("falls back to polling when the event stream is unavailable, and keeps the final results after the wipe", async () => {
    const run = await createRun({
      target: { url: "builtin:mock" },
      load: { concurrency: 4 },
      stop: { requests: 24 },
      graceSeconds: 3,
      agents: { edge: 0 },
    });
    const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    const page = await context.newPage();
    const problems = watchProblems(page);
    // As a proxy that buffers or blocks streaming responses would.
    await page.route("**/v1/runs/*/events", (route) => route.abort());

    await page.goto(`${server.url}/runs/${run.id}#token=${run.readToken}`);
    await page.waitForSelector('#conn[data-mode="polling"]');
    await drive(run, { concurrency: 4, pauseMs: 150 });
    await page.waitForSelector('#phase[data-phase="complete"]');
    expect(Number(await dataset(page, "#chart-latency", "points"))).toBeGreaterThan(0);

    // After the grace window the server forgets the run; the page keeps what it showed.
    await page.waitForSelector('#wipe[data-wiped="true"]', { timeout: 15_000 });
    expect((await api(server.url, "GET", `/v1/runs/${run.id}`, run.readToken)).status).toBe(404);
    expect(await page.isDisabled('button[data-format="csv"]')).toBe(true);
    expect(await page.isEnabled('button[data-format="json"]')).toBe(true);
    expect(Number(await dataset(page, `#metrics tr[data-metric="request_latency"] td[data-stat="p50"]`, "value"))).toBeGreaterThan(0);
    expect(await page.isVisible("#notice")).toBe(false);
    // The aborted event stream is the one expected failure in the console.
    expect(problems.filter((p) => !p.includes("ERR_FAILED"))).toEqual([]);

    // Opened after the wipe: not "loading" for ever, and nothing to download.
    const late = await context.newPage();
    await late.goto(`${server.url}/runs/${run.id}#token=${run.readToken}`);
    await late.waitForSelector('#phase[data-phase="gone"]');
    expect(await late.textContent("#phase")).toBe("not found");
    expect(await late.textContent("#notice")).toContain("No such run");
    expect(await late.$$eval("button[data-format]", (bs) => bs.filter((b) => (b as any).offsetParent !== null).length)).toBe(0);
    await context.close();
  });
});

describe("the dashboard while a run is live", () => {
  it("draws the progress bar as far as its label says, also where the page's colours are forced (a contrast theme)", async () => {
    const run = await createRun({ target: { url: "builtin:mock" }, load: { concurrency: 4 }, stop: { requests: 60 }, graceSeconds: 30 });
    const driving = drive(run, { concurrency: 4, pauseMs: 150 });
    for (const options of [{}, { forcedColors: "active" as const }]) {
      const context = await browser.newContext({ viewport: { width: 1024, height: 800 }, ...options });
      const page = await context.newPage();
      await page.goto(`${server.url}/runs/${run.id}#token=${run.readToken}`);
      await page.waitForFunction(() => {
        const p = document.getElementById("progress")!;
        return p.dataset.phase === "running" && Number(p.dataset.completed) >= 8;
      });
      const { value, filled } = await progressDrawn(page);
      expect(await page.textContent("#progress-label")).toMatch(/ · \d+%$/);
      expect(value, JSON.stringify(options)).toBeGreaterThan(0.1);
      expect(value).toBeLessThan(1);
      expect(Math.abs(filled - value), `${JSON.stringify(options)}: drawn ${filled}, value ${value}`).toBeLessThan(0.06);
      await context.close();
    }
    await driving;
  });

  it("keeps the live charts within about two seconds of the elapsed time", async () => {
    const run = await createRun({ target: { url: "builtin:mock" }, load: { concurrency: 4 }, stop: { requests: 90 }, graceSeconds: 30 });
    const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/runs/${run.id}#token=${run.readToken}`);
    const driving = drive(run, { concurrency: 4, pauseMs: 150 });
    const startedAt = async () => Date.parse((await api(server.url, "GET", `/v1/runs/${run.id}`, run.readToken)).body.startedAt);
    await page.waitForSelector('#phase[data-phase="running"]');
    const start = await startedAt();
    let finished = false;
    driving.finally(() => (finished = true));
    const lags: number[] = [];
    while (!finished) {
      await sleep(300);
      const elapsed = (Date.now() - start) / 1000;
      const last = await dataset(page, "#chart-throughput", "lastX");
      // From the third second on: before that there is hardly a second to draw.
      if (elapsed > 3 && last !== "" && !finished) lags.push(elapsed - Number(last));
    }
    await driving;
    expect(lags.length).toBeGreaterThan(8);
    const mean = lags.reduce((a, b) => a + b, 0) / lags.length;
    expect(mean, lags.map((l) => l.toFixed(1)).join(" ")).toBeLessThan(2.5);
    expect(Math.max(...lags), lags.map((l) => l.toFixed(1)).join(" ")).toBeLessThan(3.6);
    await context.close();
  });

  it("draws a steady load as a steady throughput line (a moving average over the seconds' edges), on axes that start at 0", async () => {
    const out = await withCharts<{
      xs: number[];
      rps: number[];
      liveXs: number[];
      liveRps: Array<number | null>;
      range: number[];
      empty: number[];
    }>(`
      // 30 s at a steady 14 req/s, settled in waves of 4 that land 3 or 4 to a second.
      const buckets = Array.from({ length: 30 }, (_, t) => ({ t, completed: t % 2 ? 16 : 12, failed: 0, outputTokens: 0, latency: null, ttft: null }));
      const final = { final: true, timeseries: { bucketSeconds: 1, buckets }, metrics: { benchmark_duration: { avg: 30 } } };
      const live = { final: false, timeseries: { bucketSeconds: 1, buckets: buckets.slice(0, 11) }, metrics: { benchmark_duration: { avg: 10.4 } } };
      const [xs, rps] = charts.throughputData(final);
      const [liveXs, liveRps] = charts.throughputData(live);
      return { xs, rps, liveXs, liveRps, range: charts.fromZero(null, 12, 16), empty: charts.fromZero(null, 0, 0) };
    `);
    // Each second is drawn at its end.
    expect(out.xs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    // Raw, the counts zig-zag between 12 and 16; averaged over 5 s, within half a request of 14.
    for (const v of out.rps.slice(4)) expect(Math.abs(v - 14)).toBeLessThanOrEqual(0.41);
    // While live: only seconds that ended a report interval ago, and the axis runs on to now.
    expect(out.liveXs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10.4]);
    expect(out.liveRps.at(-1)).toBeNull();
    expect(out.range[0]).toBe(0);
    expect(out.range[1]).toBeGreaterThanOrEqual(16);
    expect(out.empty).toEqual([0, 1]);
  });

  it("draws slices shorter than a second at their own places (slices of 0.1 s: a steady 10 req/s, no gaps)", async () => {
    const [xs, rps] = await withCharts<[number[], number[]]>(`
      // Starts as the results document writes them: 0, 0.1, …, 2.9 (one request ending in each).
      const buckets = Array.from({ length: 30 }, (_, i) => ({ t: i / 10, completed: 1, failed: 0, outputTokens: 0, latency: null, ttft: null }));
      return charts.throughputData({ final: true, timeseries: { bucketSeconds: 0.1, buckets }, metrics: { benchmark_duration: { avg: 3 } } });
    `);
    expect(xs).toHaveLength(30);
    expect(xs.at(-1)).toBe(3);
    for (const v of rps) expect(v).toBeCloseTo(10, 6);
  });
});

/**
 * Runs `body` (a function body, as source, that may use `charts`) in a page of the Worker,
 * with the dashboard's chart module imported as the page imports it.
 */
async function withCharts<T>(body: string): Promise<T> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${server.url}/runs/${"0".repeat(64)}`);
    return (await page.evaluate(`(async () => {
      const charts = await import("/assets/charts.ui.js");
      ${body}
    })()`)) as T;
  } finally {
    await context.close();
  }
}

/** The same run at a phone's viewport (the layout must hold up at 390 px), and in dark mode. */
async function otherScreenshots(run: Run): Promise<void> {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(`${server.url}/runs/${run.id}#token=${run.readToken}`);
  await page.waitForSelector('#conn[data-mode="final"]');
  await page.waitForFunction(() => Number(document.getElementById("chart-itl-dist")!.dataset.points) > 0);
  // Nothing wider than the screen: tables scroll inside their own box.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true, animations: "disabled" });
  await context.close();

  const dark = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "dark" });
  const darkPage = await dark.newPage();
  await darkPage.goto(`${server.url}/runs/${run.id}#token=${run.readToken}`);
  await darkPage.waitForSelector('#conn[data-mode="final"]');
  await darkPage.screenshot({ path: join(ARTIFACTS, "dashboard-dark.png"), fullPage: true, animations: "disabled" });
  await dark.close();
}
