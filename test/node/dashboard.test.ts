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
import { DEV_API_TOKEN, api, e2eServer } from "./dev-server.ts";

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
  await server.kill();
});

interface Run {
  id: string;
  readToken: string;
  agentToken: string;
}

async function createRun(spec: Record<string, unknown>): Promise<Run> {
  const res = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, spec);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Run;
}

/**
 * An external agent that holds up to `concurrency` credits and settles two at a time,
 * pausing between reports so a reader sees the run move. Results vary (latency, TTFT,
 * output tokens, the odd failure) and end at the real time since the run started.
 */
async function drive(run: Run, { concurrency, pauseMs }: { concurrency: number; pauseMs: number }): Promise<void> {
  const path = `/v1/runs/${run.id}`;
  const joined = await api(server.url, "POST", `${path}/agents`, run.agentToken, { name: "e2e-agent", region: "weur" });
  expect(joined.status, JSON.stringify(joined.body)).toBe(200);
  const agentId = joined.body.agentId as string;
  const startedAt = Date.parse((await api(server.url, "GET", path, run.readToken)).body.startedAt ?? new Date().toISOString());
  const held: number[] = [];
  let n = 0;
  for (;;) {
    if (held.length < concurrency) {
      const l = await api(server.url, "POST", `${path}/leases`, run.agentToken, {
        agentId,
        requestId: `l${n++}`,
        want: concurrency - held.length,
        inflight: held.length,
      });
      if (l.status === 200) held.push(...(l.body.credits as Array<{ seq: number }>).map((c) => c.seq));
    }
    if (held.length === 0) return;
    const settle = held.splice(0, 2);
    const results = settle.map((seq) => {
      const ttftMs = 15 + ((seq * 13) % 40);
      const outputTokens = 16 + (seq % 17);
      const latencyMs = ttftMs + outputTokens * (3 + (seq % 5)) + ((seq * 37) % 60);
      const endMs = Date.now() - startedAt;
      if (seq % 23 === 7) return { seq, ok: false, latencyMs, endMs, error: { code: "http_500", type: "server_error" } };
      return { seq, ok: true, latencyMs, ttftMs, inputTokens: 120, outputTokens, endMs };
    });
    const r = await api(server.url, "POST", `${path}/reports`, run.agentToken, {
      agentId,
      reportId: `r${n++}`,
      inflight: held.length,
      results,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await sleep(pauseMs);
  }
}

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

    const driving = drive(run, { concurrency: 4, pauseMs: 200 });
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
    expect(await page.textContent("#agents tbody")).toContain("e2e-agent");
    await page.waitForSelector('#regions .chip[data-region="weur"]');
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

    // The grace window: a countdown to the wipe.
    expect(await page.isVisible("#wipe")).toBe(true);
    expect(await page.textContent("#wipe-in")).toMatch(/^\d+ s$/);

    // Downloads: three buttons; CSV and AIPerf JSON come from the server with the token.
    expect(await page.$$eval("button[data-format]", (bs) => bs.map((b) => (b as unknown as BrowserElement).dataset.format))).toEqual([
      "json",
      "aiperf",
      "csv",
    ]);
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
    const second = await context.newPage();
    await second.goto(`${server.url}/runs/${id}#token=epr_not-a-real-token`);
    // A token that is not the run's own gets a 404, like a run that does not exist.
    await second.waitForFunction(() =>
      (document.getElementById("notice") as unknown as { textContent: string }).textContent.includes("No such run"),
    );
    expect(await dataset(second, "#conn", "mode")).toBe("offline");
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
    await context.close();
  });
});

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
