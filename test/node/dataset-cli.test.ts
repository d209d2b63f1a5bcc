// `edgeperf dataset …` and `edgeperf run --input-file` as a user runs them: the bundled CLI
// as a subprocess against a real `wrangler dev`, whose R2 bucket (DATASETS) is emulated
// on disk.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { datasetId, parseDataset } from "../../contract/dataset-format.ts";
import { edgeperf } from "./cli-process.ts";
import { DEV_API_TOKEN, api, e2eServer, tempDir } from "./dev-server.ts";

const server = e2eServer();
beforeAll(() => server.start());
afterAll(() => server.dispose());

const dir = tempDir("edgeperf-datasets-");
let files = 0;
function file(text: string, ext = "jsonl"): string {
  const path = join(dir, `f${files++}.${ext}`);
  writeFileSync(path, text);
  return path;
}

const conn = () => ["--server", server.url, "--token", DEV_API_TOKEN];
const ID = /ds_[0-9a-f]{64}/;

async function listed(): Promise<string[]> {
  const r = await api(server.url, "GET", "/v1/datasets?limit=1000", DEV_API_TOKEN);
  expect(r.status).toBe(200);
  return r.body.datasets.map((d: { id: string }) => d.id);
}

async function items(id: string): Promise<unknown[]> {
  const res = await fetch(`${server.url}/v1/datasets/${id}/items`, { headers: { authorization: `Bearer ${DEV_API_TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.text())
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

describe("edgeperf dataset", () => {
  it("uploads a file under the id computed locally, skips the upload the second time, lists it and deletes it", async () => {
    const text = `{"text": "first ${Date.now()}", "output_length": 5}\n\n{"messages": [{"role": "user", "content": "hi"}]}\n`;
    const path = file(text);
    const expected = await datasetId("single_turn", parseDataset("single_turn", text));

    const first = await edgeperf(["dataset", "upload", path, "--type", "single_turn", ...conn()]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe(
      `Dataset ${expected} (single_turn, 2 items, ${first.stdout.match(/(\d+) bytes/)?.[1]} bytes) uploaded from ${path}.\n`,
    );
    const info = await api(server.url, "GET", `/v1/datasets/${expected}`, DEV_API_TOKEN);
    expect(info.status).toBe(200);

    const again = await edgeperf(["dataset", "upload", path, "--type", "single_turn", ...conn()]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`Dataset ${expected} (single_turn, 2 items,`);
    expect(again.stdout).toContain("is already on the server: upload skipped.");
    // Nothing written the second time: the stored object still has its first createdAt.
    expect((await api(server.url, "GET", `/v1/datasets/${expected}`, DEV_API_TOKEN)).body).toEqual(info.body);

    const list = await edgeperf(["dataset", "list", ...conn()]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${expected} │ single_turn │ +2 │`));
    const json = await edgeperf(["dataset", "list", "--json", ...conn()]);
    expect(JSON.parse(json.stdout)).toContainEqual(info.body);

    const del = await edgeperf(["dataset", "delete", expected, ...conn()]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toBe(`Dataset ${expected} deleted.\n`);
    expect(await listed()).not.toContain(expected);
    const gone = await edgeperf(["dataset", "delete", expected, ...conn()]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe("edgeperf: HTTP 404 dataset_not_found: No such dataset (it may have been deleted).\n");
  });

  it("names a bad line of the file by its number, exits 2 and sends nothing", async () => {
    const before = await listed();
    const path = file(
      '{"timestamp": 0, "input_length": 4, "output_length": 1}\n{"timestamp": 5, "input_length": 4, "output_length": 1}\n{"timestamp": 3, "input_length": 4, "output_length": 1}\n',
    );
    const r = await edgeperf(["dataset", "upload", path, "--type", "mooncake_trace", ...conn()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`edgeperf: ${path} line 3: timestamp 3 is before the previous line's 5: timestamps must not decrease\n`);
    expect(await listed()).toEqual(before);
  });

  it("refuses a missing or unknown --type by name", async () => {
    const path = file('{"text":"a"}');
    const none = await edgeperf(["dataset", "upload", path, ...conn()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe("edgeperf: dataset upload needs --type (single_turn, multi_turn, mooncake_trace, sharegpt)\n");
    const bad = await edgeperf(["dataset", "upload", path, "--type", "random_pool", ...conn()]);
    expect(bad.stderr).toBe('edgeperf: --type must be single_turn, multi_turn, mooncake_trace, sharegpt (got "random_pool")\n');
  });

  const sharegpt = JSON.stringify([
    {
      id: "c1",
      conversations: [
        { from: "human", value: "What is R2?" },
        { from: "gpt", value: "Object storage." },
        { from: "human", value: "Egress?" },
      ],
    },
    { id: "c2", conversations: [{ from: "gpt", value: "a reply with no question" }] },
    { id: "c3", conversations: [{ from: "human", value: "Hello" }] },
  ]);

  it("converts ShareGPT to single_turn: each conversation's first human turn, no output length, conversations without one left out", async () => {
    const r = await edgeperf(["dataset", "upload", file(sharegpt, "json"), "--type", "sharegpt", ...conn()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("(single_turn, 2 items,");
    expect(r.stdout).toContain("; 1 ShareGPT conversation without a human turn left out.");
    const id = ID.exec(r.stdout)?.[0] ?? "";
    expect(await items(id)).toEqual([{ turns: [{ text: "What is R2?" }] }, { turns: [{ text: "Hello" }] }]);
  });

  it("converts ShareGPT to multi_turn sessions with --sharegpt-multi-turn, and names a malformed entry", async () => {
    const r = await edgeperf(["dataset", "upload", file(sharegpt, "json"), "--type", "sharegpt", "--sharegpt-multi-turn", ...conn()]);
    expect(r.code, r.stderr).toBe(0);
    const id = ID.exec(r.stdout)?.[0] ?? "";
    expect(await items(id)).toEqual([
      { sessionId: "c1", turns: [{ text: "What is R2?" }, { text: "Egress?" }] },
      { sessionId: "c3", turns: [{ text: "Hello" }] },
    ]);

    const path = file(
      JSON.stringify([{ conversations: [{ from: "human", value: "ok" }] }, { conversations: [{ from: "human", value: 3 }] }]),
      "json",
    );
    const bad = await edgeperf(["dataset", "upload", path, "--type", "sharegpt", ...conn()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`edgeperf: ${path}[1].conversations[0].value must be a string\n`);
  });
});

describe("edgeperf run --input-file", () => {
  it("uploads the dataset before creating the run, or finds it already there", async () => {
    const text = `{"turns": [{"text": "run ${Date.now()}"}, {"text": "then", "delay": 10}]}\n`;
    const path = file(text);
    const id = await datasetId("multi_turn", parseDataset("multi_turn", text));
    const args = [
      "run",
      ...conn(),
      "--url",
      "builtin:mock",
      "--request-count",
      "4",
      "--input-file",
      path,
      "--custom-dataset-type",
      "multi_turn",
    ];
    const first = await edgeperf(args);
    expect(first.stderr).toContain(`Dataset ${id} (multi_turn, 1 items,`);
    expect(first.stderr).toContain(`uploaded from ${path}.`);
    expect(await listed()).toContain(id);
    expect(first.stdout).toMatch(/^Sessions: \d+ started, \d+ completed, \d+ cut short \(requests count turns\)$/m);
    const again = await edgeperf(args);
    expect(again.stderr).toContain(`Dataset ${id} (multi_turn, 1 items,`);
    expect(again.stderr).toContain("is already on the server: upload skipped.");
  });

  it("replays a mooncake_trace with --fixed-schedule --replay-speedup, one request per item, and puts AIPerf's prefix flags in workload.sharedPrefix", async () => {
    const trace = [0, 400, 800]
      .map((t, i) => JSON.stringify({ timestamp: t + i, input_length: 20, output_length: 3, hash_ids: [i] }))
      .join("\n");
    const path = file(trace);
    const out = tempDir("edgeperf-replay-");
    const r = await edgeperf([
      "run",
      ...conn(),
      "--url",
      "builtin:mock",
      "--request-count",
      "50",
      "--input-file",
      path,
      "--custom-dataset-type",
      "mooncake_trace",
      "--fixed-schedule",
      "--replay-speedup",
      "4",
      "--out",
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    expect(results.spec.workload.replaySpeedup).toBe(4);
    expect(results.counts).toMatchObject({ granted: 3, completed: 3 });
    expect(results.delivered.scheduleLagMs).not.toBeNull();

    const prefixOut = tempDir("edgeperf-prefix-");
    const p = await edgeperf([
      "run",
      ...conn(),
      "--url",
      "builtin:mock",
      "--request-count",
      "2",
      "--prefix-prompt-length",
      "16",
      "--num-prefix-prompts",
      "3",
      "--out",
      prefixOut,
    ]);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(prefixOut, "results.json"), "utf8")).spec.workload.sharedPrefix).toEqual({
      tokens: 16,
      prompts: 3,
    });

    const wrong = await edgeperf([
      "run",
      ...conn(),
      "--url",
      "builtin:mock",
      "--input-file",
      path,
      "--custom-dataset-type",
      "single_turn",
      "--fixed-schedule",
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toBe(
      "edgeperf: --fixed-schedule replays a trace's timestamps: it goes with --input-file FILE --custom-dataset-type mooncake_trace\n",
    );
  });

  it("names a bad line with --input-file and creates no run", async () => {
    const path = file('{"text":"a"}\n{"text":"b","output_length":-1}\n');
    const before = (await api(server.url, "GET", "/v1/runs", DEV_API_TOKEN)).body.runs;
    const r = await edgeperf(["run", ...conn(), "--url", "builtin:mock", "--input-file", path, "--custom-dataset-type", "single_turn"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`edgeperf: --input-file ${path} line 2: output_length must be an integer ≥ 1\n`);
    const runs = await api(server.url, "GET", "/v1/runs", DEV_API_TOKEN);
    expect(runs.body.runs).toEqual(before);
  });

  it("names --dataset-sampling when the server refuses the sampling", async () => {
    const path = file('{"text":"sampled"}');
    const r = await edgeperf([
      "run",
      ...conn(),
      "--url",
      "builtin:mock",
      "--input-file",
      path,
      "--custom-dataset-type",
      "single_turn",
      "--dataset-sampling",
      "bogus",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^edgeperf: HTTP 400 \w+: --dataset-sampling \(workload\.dataset\.sampling\) /m);
  });

  it("needs --custom-dataset-type with --input-file, and --input-file with it", async () => {
    const path = file('{"text":"a"}');
    const noType = await edgeperf(["run", ...conn(), "--url", "builtin:mock", "--input-file", path]);
    expect(noType.code).toBe(2);
    expect(noType.stderr).toBe("edgeperf: --input-file needs --custom-dataset-type (single_turn, multi_turn, mooncake_trace, sharegpt)\n");
    const noFile = await edgeperf(["run", ...conn(), "--url", "builtin:mock", "--custom-dataset-type", "single_turn"]);
    expect(noFile.stderr).toBe("edgeperf: --custom-dataset-type goes with --input-file FILE\n");
    const badType = await edgeperf(["run", ...conn(), "--url", "builtin:mock", "--input-file", path, "--custom-dataset-type", "x"]);
    expect(badType.stderr).toBe('edgeperf: --custom-dataset-type must be single_turn, multi_turn, mooncake_trace, sharegpt (got "x")\n');
  });
});
