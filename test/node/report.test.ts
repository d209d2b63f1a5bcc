// report.html: the dashboard of a run in one file that people keep. `edgeperf results
// --out DIR` writes it; GET /v1/runs/:id/report serves the same file during the grace
// window. Here it is opened from disk (file://) in headless Chromium with every request
// but the file itself refused, and must draw its charts and tables all the same.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "./browser.ts";
import { edgeperf } from "./cli-process.ts";
import { api, e2eServer, tempDir } from "./dev-server.ts";
import { createRun, drive } from "./drive.ts";
import type { Run } from "./drive.ts";

// The browser globals the page functions below use (this file is typechecked without the DOM library).
interface BrowserElement {
  id: string;
  dataset: Record<string, string | undefined>;
  textContent: string;
  content: string;
}
declare const document: { getElementById(id: string): BrowserElement | null };
interface BrowserCanvas {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}

const server = e2eServer();
let browser: Browser;
let run: Run;
let final: any;
let dir: string;

const CHARTS = ["chart-throughput", "chart-latency", "chart-ttft", "chart-ttft-dist", "chart-itl-dist"];

beforeAll(async () => {
  await server.start();
  browser = await launchChromium();
  // A finished run with a known history: an external agent settles 48 requests, two at a
  // time, over about four seconds (one in 23 fails).
  run = await createRun(server.url, {
    target: { url: "builtin:mock", model: "mock-llm", stream: true },
    load: { concurrency: 4 },
    stop: { requests: 48 },
    graceSeconds: 120,
    thresholds: { "time_to_first_token.p99": "<500", "request_latency.p50": "<100" },
  });
  await drive(server.url, run, { concurrency: 4, pauseMs: 150 });
  final = (await api(server.url, "GET", `/v1/runs/${run.id}/results`, run.readToken)).body;
  expect(final.final).toBe(true);
  dir = tempDir("edgeperf-report-");
  const r = await edgeperf(["results", run.id, "--server", server.url, "--token", run.readToken, "--out", dir]);
  // Exit 1: the run has a failed threshold (request_latency.p50<100).
  expect(r.code, r.stderr).toBe(1);
  expect(r.stdout).toContain(join(dir, "report.html"));
});

afterAll(async () => {
  await browser?.close();
  await server.dispose();
});

/** Pixels of a chart's canvas in a saturated colour: series, not axes or grid (greys). */
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

/** The file's HTML without its data block, which holds the document as it was when read (serverTime differs). */
const withoutData = (html: string) => html.replace(/<script type="application\/json" id="edgeperf-results">.*?<\/script>/s, "");
const dataOf = (html: string) => JSON.parse(/<script type="application\/json" id="edgeperf-results">(.*?)<\/script>/s.exec(html)![1]!);

describe("report.html", () => {
  it("opens from disk with every network request refused, and draws the run's charts, tables, thresholds and errors", async () => {
    const file = join(dir, "report.html");
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const refused: string[] = [];
    await context.route("**/*", (route) => {
      if (route.request().url() === `file://${file}`) return route.continue();
      refused.push(route.request().url());
      return route.abort();
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => Number(document.getElementById("chart-itl-dist")!.dataset.points) > 0);

    for (const id of CHARTS) {
      expect(Number(await page.$eval(`#${id}`, (el) => (el as unknown as BrowserElement).dataset.points)), id).toBeGreaterThan(0);
      expect(await colouredPixels(page, id), id).toBeGreaterThan(100);
    }
    expect(await page.textContent("#phase")).toContain("complete");
    expect(await page.textContent("#progress-label")).toContain("48 / 48 requests");
    const p99 = await page.$eval(
      `#metrics tr[data-metric="request_latency"] td[data-stat="p99"]`,
      (el) => (el as unknown as BrowserElement).dataset.value,
    );
    expect(Number(p99)).toBeCloseTo(final.metrics.request_latency.p99, 6);
    expect(await page.$$eval("#thresholds li[data-ok]", (lis) => lis.map((li) => (li as unknown as BrowserElement).dataset.ok))).toEqual(
      final.thresholds.map((t: { ok: boolean }) => String(t.ok)),
    );
    expect(await page.textContent("#errors")).toContain("http_500");
    expect(await page.textContent("#delivered")).toContain("of 4");
    // Nothing that needs the server is on the page: no downloads, no wipe countdown.
    expect(await page.$$("button[data-format]")).toHaveLength(0);
    expect(await page.$("#wipe")).toBeNull();
    // The file allows only its own inline scripts and style (by hash): no network, by policy too.
    const csp = await page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) => (m as unknown as BrowserElement).content);
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");

    expect(refused).toEqual([]);
    expect(problems).toEqual([]);
    await page.screenshot({ path: join(process.cwd(), "test-artifacts", "report.png"), fullPage: true, animations: "disabled" });
    await context.close();
  });

  it("is what GET /v1/runs/:id/report serves during the grace window, with the read token in the Authorization header and its policy as a header", async () => {
    const res = await fetch(`${server.url}/v1/runs/${run.id}/report`, { headers: { authorization: `Bearer ${run.readToken}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="edgeperf-${run.id.slice(0, 12)}-report.html"`);
    const served = await res.text();
    const written = readFileSync(join(dir, "report.html"), "utf8");
    // The same page, scripts and styles; the data differs only in when it was read.
    expect(withoutData(served)).toBe(withoutData(written));
    const { serverTime: _a, ...servedData } = dataOf(served);
    const { serverTime: _b, ...writtenData } = dataOf(written);
    expect(servedData).toEqual(writtenData);
    const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(served)![1]!.replaceAll("&#39;", "'");
    expect(res.headers.get("content-security-policy")).toBe(`${meta}; frame-ancestors 'none'`);

    expect((await fetch(`${server.url}/v1/runs/${run.id}/report`)).status).toBe(401);
    const other = await fetch(`${server.url}/v1/runs/${run.id}/report`, { headers: { authorization: "Bearer epr_not-this-runs-token" } });
    expect(other.status).toBe(404);
  });
});
