// Every route's door: tokens, bodies, the one error shape, and what never leaks.
import { env } from "cloudflare:workers";
import { createExecutionContext, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../worker/index";
import { API_TOKEN, call, createRun, join, lease, mockSpec, status } from "./helpers";

function expectError(res: { status: number; body: any }, statusCode: number, code: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(statusCode);
  expect(Object.keys(res.body)).toEqual(["error"]);
  expect(res.body.error.code).toBe(code);
  expect(typeof res.body.error.message).toBe("string");
  expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+|stack/i);
}

describe("creating a run", () => {
  it("answers 201 with the run, its tokens and its URLs", async () => {
    const res = await call("POST", "/v1/runs", { body: mockSpec() });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ phase: "created", status: "running" });
    expect(res.body.id).toMatch(/^[0-9a-f]{64}$/);
    expect(res.body.readToken).toMatch(/^epr_/);
    expect(res.body.agentToken).toMatch(/^epa_/);
    expect(res.body.urls.self).toBe(`https://edgeperf.test/v1/runs/${res.body.id}`);
    expect(res.body.urls.results).toBe(`${res.body.urls.self}/results`);
    expect(res.body.urls.dashboard).toBe(`https://edgeperf.test/runs/${res.body.id}#token=${res.body.readToken}`);
    expect(res.headers.get("location")).toBe(res.body.urls.self);
  });

  it("is refused with 503 when the API_TOKEN secret is unset: never an open service", async () => {
    const req = new Request<unknown, IncomingRequestCfProperties>("https://edgeperf.test/v1/runs", {
      method: "POST",
      headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(mockSpec()),
    });
    const res = await worker.fetch(req, { ...env, API_TOKEN: undefined } as Env, createExecutionContext());
    expectError({ status: res.status, body: await res.json() }, 503, "api_token_unset");
  });

  it("needs a token (401) and the right one (401)", async () => {
    expectError(await call("POST", "/v1/runs", { token: null, body: mockSpec() }), 401, "unauthorized");
    expectError(await call("POST", "/v1/runs", { token: "wrong", body: mockSpec() }), 401, "invalid_token");
  });

  it("does not accept a run's read or agent token in place of the API token", async () => {
    const run = await createRun();
    expectError(await call("POST", "/v1/runs", { token: run.readToken, body: mockSpec() }), 401, "invalid_token");
    expectError(await call("POST", `/v1/runs/${run.id}/stop`, { token: run.agentToken }), 401, "invalid_token");
  });

  it("refuses a body that is not JSON with 415, malformed JSON with 400, and an oversized one with 413", async () => {
    expectError(
      await call("POST", "/v1/runs", { rawBody: "x=1", contentType: "application/x-www-form-urlencoded" }),
      415,
      "unsupported_media_type",
    );
    expectError(await call("POST", "/v1/runs", { rawBody: '{"target":' }), 400, "invalid_json");
    expectError(await call("POST", "/v1/runs", { rawBody: "" }), 400, "invalid_json");
    const big = JSON.stringify({ ...mockSpec(), pad: "x".repeat(1_100_000) });
    expectError(await call("POST", "/v1/runs", { rawBody: big }), 413, "body_too_large");
  });

  it("counts the size of a streamed body whose length was not declared", async () => {
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 20) controller.enqueue(chunk);
        else controller.close();
      },
    });
    expectError(await call("POST", "/v1/runs", { rawBody: stream }), 413, "body_too_large");
  });

  it("refuses an invalid spec with the validator's code and creates nothing", async () => {
    const before = (await listDurableObjectIds(env.RUN_COORDINATOR)).length;
    expectError(await call("POST", "/v1/runs", { body: { ...mockSpec(), bogus: 1 } }), 400, "unknown_field");
    expectError(await call("POST", "/v1/runs", { body: { ...mockSpec(), stop: {} } }), 400, "no_stop_condition");
    expectError(await call("POST", "/v1/runs", { body: { ...mockSpec(), graceSeconds: 301 } }), 422, "out_of_range");
    expectError(
      await call("POST", "/v1/runs", { body: mockSpec({ target: { url: "https://evil.test/v1", model: "m" } }) }),
      403,
      "target_not_allowed",
    );
    expect((await listDurableObjectIds(env.RUN_COORDINATOR)).length).toBe(before);
  });
});

describe("reading a run", () => {
  it("accepts the read token and the API token, and refuses the agent token as if the run did not exist", async () => {
    const run = await createRun();
    expect((await call("GET", `/v1/runs/${run.id}`, { token: run.readToken })).status).toBe(200);
    expect((await call("GET", `/v1/runs/${run.id}`)).status).toBe(200);
    expectError(await call("GET", `/v1/runs/${run.id}`, { token: run.agentToken }), 404, "run_not_found");
  });

  it("answers a token of another run with 404, so a run's existence is not revealed", async () => {
    const a = await createRun();
    const b = await createRun();
    expectError(await call("GET", `/v1/runs/${a.id}`, { token: b.readToken }), 404, "run_not_found");
    expectError(await call("POST", `/v1/runs/${a.id}/agents`, { token: b.agentToken, body: {} }), 404, "run_not_found");
  });

  it("answers malformed and unknown run ids with 404", async () => {
    expectError(await call("GET", "/v1/runs/not-a-run"), 404, "run_not_found");
    expectError(await call("GET", `/v1/runs/${"0".repeat(64)}`), 404, "run_not_found");
    const unknown = env.RUN_COORDINATOR.newUniqueId().toString();
    expectError(await call("GET", `/v1/runs/${unknown}`), 404, "run_not_found");
    expectError(await call("GET", `/v1/runs/${unknown}/results`), 404, "run_not_found");
    // Asking about an unknown run leaves nothing behind in the object it would live in.
    const tables = await runInDurableObject(env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(unknown)), (_i, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'").toArray(),
    );
    expect(tables).toEqual([]);
  });

  it("refuses a bad wait or format on results with 400", async () => {
    const run = await createRun();
    expectError(await call("GET", `/v1/runs/${run.id}/results?wait=61`, { token: run.readToken }), 400, "invalid_query");
    expectError(await call("GET", `/v1/runs/${run.id}/results?wait=abc`, { token: run.readToken }), 400, "invalid_query");
    expectError(await call("GET", `/v1/runs/${run.id}/results?format=xml`, { token: run.readToken }), 400, "unsupported_format");
  });

  it("never shows the target's API key or header values to a reader", async () => {
    const run = await createRun({
      target: {
        url: "https://api.example.org/v1/chat/completions?key=s3cr3t-q",
        model: "m",
        apiKey: "sk-s3cr3t-key",
        headers: { "x-secret": "s3cr3t-h" },
      },
    });
    for (const path of ["", "/results"]) {
      const text = JSON.stringify((await call("GET", `/v1/runs/${run.id}${path}`, { token: run.readToken })).body);
      expect(text).not.toContain("s3cr3t");
    }
  });

  it("long-polls results: a waiter sees the completing report's result without polling again", async () => {
    const run = await createRun({ stop: { requests: 1 } });
    const agentId = await join(run);
    const seq = (await lease(run, agentId, 1)).body.credits[0].seq;
    const waiting = call("GET", `/v1/runs/${run.id}/results?wait=30`, { token: run.readToken });
    await call("POST", `/v1/runs/${run.id}/reports`, {
      token: run.agentToken,
      body: { agentId, reportId: "done", inflight: 0, results: [{ seq, ok: true, latencyMs: 5 }] },
    });
    const res = await waiting;
    expect(res.body).toMatchObject({ final: true, phase: "complete" });
  });
});

describe("the agent protocol's door", () => {
  it("refuses malformed lease and report bodies with 400 and unknown agents with 404", async () => {
    const run = await createRun();
    const agentId = await join(run);
    const at = (p: string) => `/v1/runs/${run.id}/${p}`;
    expectError(
      await call("POST", at("leases"), { token: run.agentToken, body: { agentId, requestId: "r", want: 0 } }),
      422,
      "out_of_range",
    );
    expectError(
      await call("POST", at("leases"), { token: run.agentToken, body: { agentId, requestId: "r", want: 1.5 } }),
      400,
      "invalid_spec",
    );
    expectError(
      await call("POST", at("leases"), { token: run.agentToken, body: { agentId, requestId: "r", want: 1, extra: 1 } }),
      400,
      "unknown_field",
    );
    expectError(
      await call("POST", at("leases"), { token: run.agentToken, body: { agentId: "ag_nobody", requestId: "r", want: 1 } }),
      404,
      "unknown_agent",
    );
    expectError(
      await call("POST", at("reports"), { token: run.agentToken, body: { agentId, reportId: "x", inflight: -1 } }),
      422,
      "out_of_range",
    );
    expectError(
      await call("POST", at("reports"), {
        token: run.agentToken,
        body: { agentId, reportId: "x", inflight: 0, results: [{ seq: 0, ok: "yes", latencyMs: 1 }] },
      }),
      400,
      "invalid_spec",
    );
    expect((await status(run)).body.counts.granted).toBe(0);
  });

  it("does not accept the read token on agent routes", async () => {
    const run = await createRun();
    expectError(await call("POST", `/v1/runs/${run.id}/agents`, { token: run.readToken, body: {} }), 404, "run_not_found");
  });
});

// What `curl -X POST URL -H "Authorization: Bearer …"` and common clients send for "no body".
const NO_BODIES: { name: string; init: () => RequestInit<IncomingRequestCfProperties> }[] = [
  { name: "no body at all", init: () => ({}) },
  { name: "an empty body sent as text/plain (fetch's type for a string)", init: () => ({ body: "" }) },
  {
    name: "an empty stream with no Content-Type",
    init: () => ({ body: new ReadableStream({ start: (c) => c.close() }) }),
  },
  { name: "Content-Length: 0 with the JSON type", init: () => ({ body: "", headers: { "content-type": "application/json" } }) },
  { name: "Content-Length: 0 with no Content-Type", init: () => ({ body: new Uint8Array(0), headers: { "content-length": "0" } }) },
];

async function postWithout(path: string, token: string, init: RequestInit<IncomingRequestCfProperties>) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  const res = await worker.fetch(
    new Request<unknown, IncomingRequestCfProperties>(`https://edgeperf.test${path}`, { method: "POST", ...init, headers }),
    env,
    createExecutionContext(),
  );
  return { status: res.status, body: (await res.json()) as any };
}

describe("the two routes whose body is optional", () => {
  it.each(NO_BODIES)("stops a run gracefully when POST /stop has $name", async ({ init }) => {
    const run = await createRun();
    const res = await postWithout(`/v1/runs/${run.id}/stop`, API_TOKEN, init());
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    // "user" is a graceful stop; a forced one would say "force".
    expect((await status(run)).body.stopReason).toBe("user");
  });

  it.each(NO_BODIES)("joins an agent when POST /agents has $name", async ({ init }) => {
    const run = await createRun();
    const res = await postWithout(`/v1/runs/${run.id}/agents`, run.agentToken, init());
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.agentId).toEqual(expect.any(String));
    expect((await status(run)).body.agents).toHaveLength(1);
  });

  it("still refuses a body that is present but not JSON, with 415, on both routes", async () => {
    const run = await createRun();
    const form = { body: "mode=force", headers: { "content-type": "application/x-www-form-urlencoded" } };
    expectError(await postWithout(`/v1/runs/${run.id}/stop`, API_TOKEN, form), 415, "unsupported_media_type");
    expectError(await postWithout(`/v1/runs/${run.id}/agents`, run.agentToken, { body: '{"name":"a"}' }), 415, "unsupported_media_type");
    expectError(await postWithout(`/v1/runs/${run.id}/stop`, API_TOKEN, { body: "{}" }), 415, "unsupported_media_type");
    expect((await status(run)).body.phase).toBe("created");
    expect((await status(run)).body.agents).toHaveLength(0);
  });

  it("still needs a body on every other route", async () => {
    const run = await createRun();
    const agentId = await join(run);
    expectError(await postWithout("/v1/runs", API_TOKEN, {}), 400, "invalid_json");
    expectError(await postWithout(`/v1/runs/${run.id}/leases`, run.agentToken, { body: "" }), 400, "invalid_json");
    expectError(await postWithout(`/v1/runs/${run.id}/reports`, run.agentToken, {}), 400, "invalid_json");
    expect((await lease(run, agentId, 1)).status).toBe(200);
  });
});

describe("the Authorization header", () => {
  it.each(["bearer", "BEARER", "bEaReR"])("accepts the scheme written %s: RFC 7235 schemes are case-insensitive", async (scheme) => {
    const run = await createRun();
    const res = await call("GET", `/v1/runs/${run.id}`, { token: null, headers: { authorization: `${scheme} ${run.readToken}` } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const stop = await call("POST", `/v1/runs/${run.id}/stop`, { token: null, headers: { authorization: `${scheme} ${API_TOKEN}` } });
    expect(stop.status, JSON.stringify(stop.body)).toBe(202);
  });

  it("accepts more than one space after the scheme, and still refuses another scheme or a missing token", async () => {
    const run = await createRun();
    expect((await call("GET", `/v1/runs/${run.id}`, { token: null, headers: { authorization: `Bearer   ${run.readToken}` } })).status).toBe(
      200,
    );
    for (const authorization of [`Token ${run.readToken}`, "Bearer", "Bearer ", `Bearer${run.readToken}`, `Bearer ${run.readToken} x`]) {
      expectError(await call("GET", `/v1/runs/${run.id}`, { token: null, headers: { authorization } }), 401, "unauthorized");
    }
  });
});

describe("AIPerf's integer error codes in a report", () => {
  it("are accepted and counted under the status written as a string, not refused with the whole report", async () => {
    const run = await createRun({ stop: { requests: 2 } });
    const agentId = await join(run);
    const seqs = (await lease(run, agentId, 2)).body.credits.map((c: { seq: number }) => c.seq);
    const res = await call("POST", `/v1/runs/${run.id}/reports`, {
      token: run.agentToken,
      body: {
        agentId,
        reportId: "aiperf",
        inflight: 0,
        results: seqs.map((seq: number) => ({ seq, ok: false, latencyMs: 3, error: { code: 503, type: "Service Unavailable" } })),
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.accepted).toBe(2);
    const results = await call("GET", `/v1/runs/${run.id}/results`, { token: run.readToken });
    expect(results.body.counts).toMatchObject({ failed: 2, abandoned: 0 });
    expect(results.body.errors).toEqual([{ code: "503", type: "Service Unavailable", count: 2 }]);
  });
});

describe("everything else", () => {
  it("answers /healthz without a token", async () => {
    const res = await call("GET", "/healthz", { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toBe("ok");
  });

  it("answers unknown routes with 404 in the one error shape", async () => {
    expectError(await call("GET", "/nope", { token: null }), 404, "not_found");
    expectError(await call("DELETE", "/v1/runs", { token: null }), 404, "not_found");
  });
});
