// wrangler's local observability (a trace collector that stores every span of the local
// Worker in its own SQLite store, inside the same workerd) is off in the servers edgeperf
// starts, unless the user asked for it with X_LOCAL_OBSERVABILITY (cli/wrangler.ts,
// wranglerEnv). Checked against a real `wrangler dev`: its Local Explorer answers a query
// of the trace store only when the collector runs.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { wranglerEnv } from "../../cli/wrangler.ts";
import { e2eServer } from "./dev-server.ts";

/** Three requests to the Worker, then the Local Explorer's count of stored spans. */
async function spansAfterRequests(url: string): Promise<{ status: number; body: any }> {
  for (let i = 0; i < 3; i++) expect((await fetch(`${url}/healthz`)).status).toBe(200);
  // The collector writes a span when its invocation's tail ends, a moment after the answer.
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${url}/cdn-cgi/explorer/api/local/observability/query`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql: "SELECT COUNT(*) AS n FROM spans" }),
    });
    const out = { status: res.status, body: (await res.json()) as any };
    if (out.status !== 200 || out.body.result.rows[0][0] > 0 || attempt === 20) return out;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("wrangler's local observability", () => {
  // The Local Explorer (on by default) answers the probe; a user's X_LOCAL_EXPLORER=false must not fail these tests.
  const saved = { observability: process.env.X_LOCAL_OBSERVABILITY, explorer: process.env.X_LOCAL_EXPLORER };
  beforeEach(() => {
    process.env.X_LOCAL_EXPLORER = "true";
  });
  afterEach(() => {
    for (const [key, value] of [
      ["X_LOCAL_OBSERVABILITY", saved.observability],
      ["X_LOCAL_EXPLORER", saved.explorer],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it("is turned off unless the caller set X_LOCAL_OBSERVABILITY, which is kept as given", () => {
    expect(wranglerEnv({ PATH: "/bin" })).toEqual({ PATH: "/bin", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: "false" });
    expect(wranglerEnv({ X_LOCAL_OBSERVABILITY: "true" }).X_LOCAL_OBSERVABILITY).toBe("true");
    expect(wranglerEnv({ WRANGLER_SEND_METRICS: "true" }).WRANGLER_SEND_METRICS).toBe("false");
  });

  it("stores no spans in a server edgeperf starts", async () => {
    delete process.env.X_LOCAL_OBSERVABILITY;
    const dev = e2eServer();
    try {
      await dev.start();
      const { status, body } = await spansAfterRequests(dev.url);
      expect(status).toBe(404);
      expect(body.errors[0].message).toMatch(/not enabled/);
    } finally {
      await dev.dispose();
    }
  });

  it("stores the Worker's spans when the user asks for it (the check above would see them)", async () => {
    process.env.X_LOCAL_OBSERVABILITY = "true";
    const dev = e2eServer();
    try {
      await dev.start();
      const { status, body } = await spansAfterRequests(dev.url);
      expect(status).toBe(200);
      expect(body.result.rows[0][0]).toBeGreaterThan(0);
    } finally {
      await dev.dispose();
    }
  });
});
