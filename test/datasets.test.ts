// /v1/datasets against the real R2 emulation (the DATASETS binding of wrangler.toml):
// upload, the same upload again, list, info, items, delete, and every refusal.
// Storage is per file, so the datasets listed are this file's alone.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { datasetId, parseDataset, MAX_DATASET_BYTES } from "../contract/dataset-format";
import { datasetKey, loadDatasetItems } from "../durable/dataset-store";
import { call } from "./helpers";
import type { CallResult } from "./helpers";

const NDJSON = "application/x-ndjson";
const upload = (type: string, text: string, opts: { token?: string | null; contentType?: string } = {}) =>
  call("POST", `/v1/datasets?type=${type}`, { rawBody: text, contentType: opts.contentType ?? NDJSON, token: opts.token });

/** Every dataset GET /v1/datasets lists, following nextCursor a page of `limit` at a time. */
async function listAll(limit = 100): Promise<Array<{ id: string; items: number }>> {
  const all = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 50; pages++) {
    const r: CallResult = await call("GET", `/v1/datasets?limit=${limit}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    all.push(...r.body.datasets);
    cursor = r.body.nextCursor;
    if (cursor === null) return all;
  }
  throw new Error("more than 50 pages");
}

const unique = () => crypto.randomUUID();

describe("POST /v1/datasets", () => {
  it.each([
    ["single_turn", () => `{"text":"hello ${unique()}","output_length":4}\n{"messages":[{"role":"user","content":"hi"}]}\n`, 2],
    ["multi_turn", () => `{"session_id":"${unique()}","turns":[{"text":"a"},{"text":"b","delay":100}]}\n`, 1],
    [
      "mooncake_trace",
      () =>
        `{"timestamp":0,"input_length":10,"output_length":2,"hash_ids":[1]}\n{"timestamp":${Date.now()},"input_length":5,"output_length":1}\n`,
      2,
    ],
  ])("stores a %s upload under its content id in R2 and answers 201 with its info", async (type, make, items) => {
    const text = make();
    const r = await upload(type, text);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const expectedId = await datasetId(type as "single_turn", parseDataset(type as "single_turn", text));
    expect(r.body).toEqual({ id: expectedId, type, items, bytes: expect.any(Number), createdAt: expect.any(String) });
    expect(r.headers.get("location")).toBe(`https://edgeperf.test/v1/datasets/${expectedId}`);
    const object = await env.DATASETS.head(datasetKey(expectedId));
    expect(object?.customMetadata).toEqual({ type, items: String(items), bytes: String(r.body.bytes), createdAt: r.body.createdAt });
    expect(object?.size).toBe(r.body.bytes);
    expect(await loadDatasetItems(env.DATASETS, expectedId)).toEqual(parseDataset(type as "single_turn", text));
  });

  it("answers the same upload again, even spaced differently, with 200 and the same id, and writes nothing", async () => {
    const tag = unique();
    const first = await upload("single_turn", `{"text":"${tag}"}\n`);
    expect(first.status).toBe(201);
    const before = await env.DATASETS.head(datasetKey(first.body.id));
    const countBefore = (await listAll()).length;

    const again = await upload("single_turn", `\n  { "text" : "${tag}" }  \r\n\n`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const after = await env.DATASETS.head(datasetKey(first.body.id));
    expect(after?.uploaded.getTime()).toBe(before?.uploaded.getTime());
    expect(after?.version).toBe(before?.version);
    expect((await listAll()).length).toBe(countBefore);
  });

  it("refuses a malformed line with its line number and reason, and stores nothing", async () => {
    const countBefore = (await listAll()).length;
    const r = await upload("multi_turn", `{"turns":[{"text":"ok"}]}\n\n{"turns":[{"text":"${unique()}"}]}\n{"turns":[{"text":7}]}\n`);
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: { code: "invalid_dataset", message: "line 4: turns[0].text must be a string" } });
    expect((await listAll()).length).toBe(countBefore);
  });

  it("refuses a missing or unknown type with 400 naming type", async () => {
    for (const query of ["", "?type=random_pool"]) {
      const r = await call("POST", `/v1/datasets${query}`, { rawBody: '{"text":"a"}', contentType: NDJSON });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("invalid_query");
      expect(r.body.error.message).toMatch(
        /^type must be one of single_turn, multi_turn, mooncake_trace \(got (missing|"random_pool")\)\.$/,
      );
    }
  });

  it("refuses any other content type with 415 naming the header", async () => {
    const r = await upload("single_turn", '{"text":"a"}', { contentType: "application/json" });
    expect(r.status).toBe(415);
    expect(r.body.error.message).toContain("'Content-Type: application/x-ndjson'");
  });

  it("refuses a body over the cap with 413, declared or streamed without a length", async () => {
    const declared = await upload("single_turn", "x".repeat(MAX_DATASET_BYTES + 1));
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe("body_too_large");

    const chunk = new TextEncoder().encode(`${'{"text":"a"}\n'.repeat(80_000)}`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_DATASET_BYTES) return controller.close();
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const streamed = await call("POST", "/v1/datasets?type=single_turn", { rawBody: stream, contentType: NDJSON });
    expect(streamed.status).toBe(413);
    expect(streamed.body.error.message).toBe(`The dataset is larger than ${MAX_DATASET_BYTES} bytes.`);
  });

  it("refuses an empty body and one that is not UTF-8", async () => {
    expect((await upload("single_turn", "")).body.error.message).toBe("The request body is empty: send the dataset's JSONL lines.");
    const r = await call("POST", "/v1/datasets?type=single_turn", { rawBody: new Uint8Array([0x7b, 0xff, 0x7d]), contentType: NDJSON });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toBe("The body is not valid UTF-8.");
  });

  it("needs the API token", async () => {
    expect((await upload("single_turn", '{"text":"a"}', { token: null })).status).toBe(401);
    expect((await upload("single_turn", '{"text":"a"}', { token: "epr_not-the-api-token" })).body.error.code).toBe("invalid_token");
  });
});

describe("GET, DELETE /v1/datasets/:id and GET /v1/datasets", () => {
  it("lists a dataset, serves its info and normalized items, deletes it (204, then 404) and stops listing it", async () => {
    const created = await upload("multi_turn", `{"session_id":"${unique()}","turns":[{"text":"a","output_length":3}]}`);
    const id: string = created.body.id;
    expect((await listAll()).map((d) => d.id)).toContain(id);

    const info = await call("GET", `/v1/datasets/${id}`);
    expect(info.status).toBe(200);
    expect(info.body).toEqual(created.body);

    const items = await call("GET", `/v1/datasets/${id}/items`);
    expect(items.status).toBe(200);
    expect(items.headers.get("content-type")).toBe(`${NDJSON}; charset=utf-8`);
    expect(items.body).toEqual({ sessionId: expect.any(String), turns: [{ text: "a", outputLength: 3 }] });

    const del = await call("DELETE", `/v1/datasets/${id}`);
    expect(del.status).toBe(204);
    expect(await env.DATASETS.head(datasetKey(id))).toBeNull();
    expect((await call("DELETE", `/v1/datasets/${id}`)).body.error.code).toBe("dataset_not_found");
    expect((await call("GET", `/v1/datasets/${id}`)).status).toBe(404);
    expect((await call("GET", `/v1/datasets/${id}/items`)).status).toBe(404);
    expect((await listAll()).map((d) => d.id)).not.toContain(id);
  });

  it("pages through every dataset with limit and nextCursor, each once", async () => {
    for (let i = 0; i < 5; i++) expect((await upload("single_turn", `{"text":"page ${i} ${unique()}"}`)).status).toBe(201);
    const whole = await listAll(1000);
    const paged = await listAll(2);
    expect(paged.map((d) => d.id)).toEqual(whole.map((d) => d.id));
    expect(new Set(paged.map((d) => d.id)).size).toBe(paged.length);
    expect(paged.length).toBeGreaterThanOrEqual(5);
  });

  it("refuses a bad limit or cursor with 400", async () => {
    expect((await call("GET", "/v1/datasets?limit=0")).body.error.message).toBe("limit must be an integer from 1 to 1000.");
    expect((await call("GET", "/v1/datasets?cursor=%00")).status).toBe(400);
  });

  it("refuses a malformed id with 400 before R2 is asked", async () => {
    for (const id of ["ds_123", `ds_${"A".repeat(64)}`, `x${"0".repeat(66)}`]) {
      for (const [method, path] of [
        ["GET", `/v1/datasets/${id}`],
        ["GET", `/v1/datasets/${id}/items`],
        ["DELETE", `/v1/datasets/${id}`],
      ] as const) {
        const r = await call(method, path);
        expect(r.status, `${method} ${path}`).toBe(400);
        expect(r.body.error.code).toBe("invalid_dataset_id");
      }
    }
  });

  it("answers an unknown well-formed id with 404", async () => {
    const id = `ds_${"0".repeat(64)}`;
    expect((await call("GET", `/v1/datasets/${id}`)).body).toEqual({
      error: { code: "dataset_not_found", message: "No such dataset (it may have been deleted)." },
    });
  });

  it("needs the API token to list, read, and delete; a run's token without ?run= is refused", async () => {
    const id = (await upload("single_turn", `{"text":"${unique()}"}`)).body.id;
    for (const [method, path] of [
      ["GET", "/v1/datasets"],
      ["GET", `/v1/datasets/${id}`],
      ["GET", `/v1/datasets/${id}/items`],
      ["DELETE", `/v1/datasets/${id}`],
    ] as const) {
      expect((await call(method, path, { token: null })).status, `${method} ${path}`).toBe(401);
      expect((await call(method, path, { token: "epa_some-agent-token" })).status, `${method} ${path}`).toBe(401);
    }
    expect((await call("GET", `/v1/datasets/${id}`)).status).toBe(200);
  });

  it("serves the items with ?run= to the API token, and answers a run token for an unknown run with 404", async () => {
    const id = (await upload("single_turn", `{"text":"${unique()}"}`)).body.id;
    expect((await call("GET", `/v1/datasets/${id}/items?run=${"a".repeat(64)}`)).status).toBe(200);
    const r = await call("GET", `/v1/datasets/${id}/items?run=not-a-run`, { token: "epa_some-agent-token" });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("run_not_found");
  });
});
