// The public route to the built-in mock, /mock/*, through the Worker: open by default
// (wrangler.toml sets MOCK_ENABLED = "true" for local runs and the demo), closed with
// the router's 404 when an operator sets MOCK_ENABLED = "false". Edge agents never come
// this way (test/mock.test.ts, "MOCK_ENABLED").
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../worker/index";

function withMock(value: string | undefined): Env {
  return new Proxy(env, {
    get: (target, key) => (key === "MOCK_ENABLED" ? value : Reflect.get(target, key)),
  });
}

async function send(method: string, path: string, on: Env) {
  const init: RequestInit<IncomingRequestCfProperties> =
    method === "POST"
      ? {
          method,
          headers: { "content-type": "application/json", "x-mock-ttft-ms": "0", "x-mock-itl-ms": "0" },
          body: JSON.stringify({ model: "mock", messages: [{ role: "user", content: "hi" }], max_tokens: 1 }),
        }
      : { method };
  const req = new Request<unknown, IncomingRequestCfProperties>(`https://edgeperf.test${path}`, init);
  const res = await worker.fetch(req, on, createExecutionContext());
  return { status: res.status, body: (await res.json()) as any };
}

describe("the /mock/* route", () => {
  it("is open with the shipped configuration, which sets MOCK_ENABLED to true", async () => {
    expect(Reflect.get(env, "MOCK_ENABLED")).toBe("true");
    expect((await send("POST", "/mock/v1/chat/completions", env)).status).toBe(200);
    expect((await send("GET", "/mock/v1/models", env)).status).toBe(200);
  });

  it("stays open when MOCK_ENABLED is unset, as on deployments made before it existed", async () => {
    expect((await send("POST", "/mock/v1/chat/completions", withMock(undefined))).status).toBe(200);
  });

  it("answers every path with the router's 404 when MOCK_ENABLED is false", async () => {
    for (const [method, path] of [
      ["POST", "/mock/v1/chat/completions"],
      ["POST", "/mock/v1/completions"],
      ["GET", "/mock/v1/models"],
    ] as const) {
      const res = await send(method, path, withMock("false"));
      expect(res.status, path).toBe(404);
      expect(res.body).toEqual({ error: { code: "not_found", message: `No route for ${method} ${path}.` } });
    }
  });
});
