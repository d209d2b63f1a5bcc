// A target that redirects: every request is a failure (http_302), the redirect is never
// followed, and the ledger counts exactly what the target saw. Real wrangler dev, real
// edge agent, a real HTTP server on loopback.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_TOKEN, api, e2eServer } from "./dev-server.ts";

const hits = { redirecting: 0, followed: 0 };
const target = createServer((req, res) => {
  if (req.url?.startsWith("/landing")) {
    hits.followed++;
    res.writeHead(200, { "content-type": "text/plain" }).end("followed");
    return;
  }
  hits.redirecting++;
  res.writeHead(302, { location: `/landing?secret=from-redirect` }).end();
});
const server = e2eServer({ ALLOWED_TARGETS: "127.0.0.1:*" });

beforeAll(async () => {
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  await server.start();
});
afterAll(async () => {
  await server.dispose();
  await new Promise((resolve) => target.close(resolve));
});

describe("a redirecting target", () => {
  it("counts every request as failed with http_302 and never follows the redirect", async () => {
    const port = (target.address() as AddressInfo).port;
    const created = await api(server.url, "POST", "/v1/runs", DEV_API_TOKEN, {
      target: { url: `http://127.0.0.1:${port}/start`, api: "http" },
      load: { concurrency: 2 },
      stop: { requests: 10 },
      agents: { edge: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    let res = await api(server.url, "GET", `/v1/runs/${created.body.id}/results?wait=30`, created.body.readToken);
    while (res.body.phase !== "complete")
      res = await api(server.url, "GET", `/v1/runs/${created.body.id}/results?wait=30`, created.body.readToken);
    expect(res.body.counts).toMatchObject({ granted: 10, completed: 0, failed: 10, outstanding: 0 });
    expect(res.body.errors).toEqual([{ code: "http_302", type: "http", count: 10 }]);
    expect(hits.redirecting).toBe(10);
    expect(hits.followed).toBe(0);
    expect(JSON.stringify(res.body)).not.toContain("from-redirect");
  });
});
