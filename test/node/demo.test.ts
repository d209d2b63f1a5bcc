// `npm start` on a fresh clone: `edgeperf demo` starts its own `wrangler dev`, benchmarks
// the built-in mock, prints the results, stops the server, and exits 0 within two minutes.
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("edgeperf demo (npm start)", () => {
  it("starts a local server, prints a results table and a dashboard URL, stops the server, and exits 0 within 120 s", async () => {
    const started = Date.now();
    const proc = spawn("node_modules/.bin/node", ["bin/edgeperf.mjs", "demo"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGTERM"), 120_000);
    const code = await new Promise<number | null>((resolve) => proc.on("close", resolve));
    clearTimeout(timer);

    expect(code, stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(120_000);
    expect(stdout).toContain("Request Latency (ms)");
    expect(stdout).toMatch(/Request Count \(requests\) │\s+200 │/);
    expect(stdout).toContain("Requests: 200 completed, 0 failed, 0 abandoned");
    const url = /Dashboard: (http:\/\/127\.0\.0\.1:\d+)\/runs\/[0-9a-f]{64}#token=\S+/.exec(stdout);
    expect(url, stdout).not.toBeNull();
    expect(stderr).toMatch(/complete\s+200\/200 \(100%\)/);
    expect(stderr).toContain("Local server stopped");

    // The server went with the demo.
    await expect(fetch(`${url?.[1]}/healthz`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
  }, 150_000);
});
