// `edgeperf dataset upload|list|delete`, and the dataset of `edgeperf run --input-file`
// (README, "Datasets and workloads"). A file is checked here with the server's own parser
// (contract/dataset-format.ts), so a bad line is named before anything is sent, and its
// content id is computed here: a dataset the server already holds is not sent again.
//
// ShareGPT (a JSON array of {conversations: [{from, value}]}, as vLLM's benchmarks use it)
// is converted here: each conversation's human turns become prompts (the first one for
// single_turn, all of them in order with --sharegpt-multi-turn); the replies are not sent,
// and their length is not known in tokens, so no output_length is set.

import { readFileSync } from "node:fs";
import type { DatasetInfo, DatasetType } from "../contract/dataset.ts";
import { DATASET_TYPES } from "../contract/dataset.ts";
import { DatasetError, datasetId, isDatasetType, parseDataset } from "../contract/dataset-format.ts";
import type { ApiClient } from "./api.ts";
import { COMMON_FLAGS, num, parseFlags, str } from "./args.ts";
import { clientOf, note, print, printJson, tokenOf } from "./common.ts";
import { CliError, UsageError, oneLine } from "./errors.ts";
import { visible as v } from "./escape.ts";
import { renderTable } from "./table.ts";

type Help = (cmd: string) => number;

/** What --type / --custom-dataset-type take: AIPerf's three layouts, and ShareGPT converted here. */
export const FILE_TYPES = [...DATASET_TYPES, "sharegpt"] as const;

export interface DatasetFile {
  type: DatasetType;
  /** The JSONL sent: the file itself, or the ShareGPT file converted. */
  text: string;
  id: string;
  items: number;
  /** ShareGPT conversations left out because they have no human turn. */
  skipped: number;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);
const HUMAN = new Set(["human", "user"]);

/** ShareGPT's JSON → AIPerf single_turn or multi_turn JSONL lines; throws naming the entry and field. */
export function fromShareGpt(json: unknown, multiTurn: boolean): { type: DatasetType; text: string; skipped: number } {
  if (!Array.isArray(json)) throw new Refused("must be a JSON array of {conversations: [{from, value}]}");
  const lines: string[] = [];
  let skipped = 0;
  json.forEach((entry, i) => {
    if (!isObj(entry) || !Array.isArray(entry.conversations)) throw new Refused(`[${i}].conversations must be a list of {from, value}`);
    const prompts: string[] = [];
    entry.conversations.forEach((turn, j) => {
      if (!isObj(turn) || typeof turn.from !== "string") throw new Refused(`[${i}].conversations[${j}].from must be a string`);
      if (typeof turn.value !== "string") throw new Refused(`[${i}].conversations[${j}].value must be a string`);
      if (HUMAN.has(turn.from)) prompts.push(turn.value);
    });
    if (prompts.length === 0) {
      skipped++;
      return;
    }
    if (!multiTurn) lines.push(JSON.stringify({ text: prompts[0] }));
    else {
      const session = typeof entry.id === "string" ? { session_id: entry.id } : {};
      lines.push(JSON.stringify({ ...session, turns: prompts.map((text) => ({ text })) }));
    }
  });
  return { type: multiTurn ? "multi_turn" : "single_turn", text: lines.join("\n"), skipped };
}

class Refused extends Error {}

/**
 * Reads and checks a dataset file. `fileFlag` and `typeFlag` name the options that gave the
 * file and its type ("--input-file", "--custom-dataset-type"), for messages; a file given as
 * an argument has no flag ("").
 */
export async function readDatasetFile(
  path: string,
  fileType: string,
  opts: { multiTurn: boolean; fileFlag: string; typeFlag: string },
): Promise<DatasetFile> {
  const label = opts.fileFlag === "" ? path : `${opts.fileFlag} ${path}`;
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new UsageError(
      `cannot read ${label}: ${code === "ENOENT" ? "no such file" : oneLine(e instanceof Error ? e.message : String(e), 120)}`,
    );
  }
  let type: DatasetType;
  let text = raw;
  let skipped = 0;
  if (fileType === "sharegpt") {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (e) {
      throw new UsageError(
        `${label} is not valid JSON (ShareGPT is one JSON array): ${oneLine(e instanceof Error ? e.message : String(e), 120)}`,
      );
    }
    try {
      ({ type, text, skipped } = fromShareGpt(json, opts.multiTurn));
    } catch (e) {
      if (e instanceof Refused) throw new UsageError(`${label}${e.message.startsWith("[") ? "" : " "}${e.message}`);
      throw e;
    }
  } else if (isDatasetType(fileType)) type = fileType;
  else throw new UsageError(`${opts.typeFlag} must be ${FILE_TYPES.join(", ")} (got "${oneLine(fileType, 40)}")`);
  let items;
  try {
    items = parseDataset(type, text);
  } catch (e) {
    if (e instanceof DatasetError) throw new UsageError(`${label} ${e.message}`);
    throw e;
  }
  // Sent in AIPerf's layout, which is what the server parses; its id is over the normalized items.
  return { type, text, id: await datasetId(type, items), items: items.length, skipped };
}

/** GET /v1/datasets/:id; null when the server has no such dataset. */
async function infoOf(client: ApiClient, token: string, id: string): Promise<DatasetInfo | null> {
  try {
    return await client.json<DatasetInfo>("GET", `/v1/datasets/${id}`, { token });
  } catch (e) {
    if (e instanceof CliError && e.status === 404) return null;
    throw e;
  }
}

// ApiClient sends JSON bodies only; an upload is JSONL.
async function post(client: ApiClient, token: string, file: DatasetFile): Promise<DatasetInfo> {
  const path = `/v1/datasets?type=${file.type}`;
  let res: Response;
  try {
    res = await fetch(client.server + path, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson" },
      body: file.text,
      redirect: "manual",
      signal: AbortSignal.timeout(120_000),
    });
  } catch (e) {
    throw new CliError(`cannot upload the dataset to ${client.server}: ${oneLine(e instanceof Error ? e.message : String(e), 160)}`);
  }
  const body = (await res.json().catch(() => null)) as (DatasetInfo & { error?: { code?: string; message?: string } }) | null;
  if (res.ok && body) return body;
  const detail = body?.error ? `${body.error.code}: ${body.error.message}` : res.statusText;
  throw new CliError(oneLine(`HTTP ${res.status} ${detail}`), { status: res.status });
}

/** The file's dataset on the server: uploaded, or found there already (then nothing is sent). */
export async function ensureDataset(
  client: ApiClient,
  token: string,
  file: DatasetFile,
): Promise<{ info: DatasetInfo; uploaded: boolean }> {
  const existing = await infoOf(client, token, file.id);
  if (existing) return { info: existing, uploaded: false };
  return { info: await post(client, token, file), uploaded: true };
}

export function describeUpload(file: string, info: DatasetInfo, uploaded: boolean, skipped: number): string {
  const what = `${v(info.id)} (${v(info.type)}, ${v(info.items)} items, ${v(info.bytes)} bytes)`;
  const skip = skipped > 0 ? `; ${skipped} ShareGPT conversation${skipped === 1 ? "" : "s"} without a human turn left out` : "";
  return uploaded ? `Dataset ${what} uploaded from ${v(file)}${skip}.` : `Dataset ${what} is already on the server: upload skipped${skip}.`;
}

async function upload(argv: string[], help: Help): Promise<number> {
  const flags = { ...COMMON_FLAGS, type: { type: "string" }, "sharegpt-multi-turn": { type: "boolean" } } as const;
  const { values, positionals } = parseFlags(argv, flags, { min: 1, max: 1, names: "FILE" });
  if (values.help) return help("dataset");
  const type = str(values, "type");
  if (type === undefined) throw new UsageError(`dataset upload needs --type (${FILE_TYPES.join(", ")})`);
  if (values["sharegpt-multi-turn"] && type !== "sharegpt") throw new UsageError("--sharegpt-multi-turn goes with --type sharegpt");
  const path = positionals[0] ?? "";
  const file = await readDatasetFile(path, type, { multiTurn: values["sharegpt-multi-turn"] === true, fileFlag: "", typeFlag: "--type" });
  const client = clientOf(values);
  const { info, uploaded } = await ensureDataset(client, tokenOf(values, "the API token"), file);
  if (values.json) printJson(info);
  else print(describeUpload(path, info, uploaded, file.skipped));
  return 0;
}

async function list(argv: string[], help: Help): Promise<number> {
  const { values } = parseFlags(argv, { ...COMMON_FLAGS, limit: { type: "string" } }, { min: 0, max: 0, names: "" });
  if (values.help) return help("dataset");
  const client = clientOf(values);
  const token = tokenOf(values, "the API token");
  const limit = num(values, "limit");
  const all: DatasetInfo[] = [];
  let cursor: string | null = null;
  do {
    const q: string = `?limit=${limit ?? 1000}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
    const page: { datasets: DatasetInfo[]; nextCursor: string | null } = await client.json("GET", `/v1/datasets${q}`, { token });
    all.push(...page.datasets);
    cursor = page.nextCursor;
  } while (cursor !== null);
  if (values.json) printJson(all);
  else if (all.length === 0) print("No datasets.");
  else {
    const rows = all.map((d) => [v(d.id), v(d.type), v(d.items), v(d.bytes), v(d.createdAt)]);
    print(renderTable("Datasets", ["ID", "Type", "Items", "Bytes", "Created"], rows));
  }
  return 0;
}

async function remove(argv: string[], help: Help): Promise<number> {
  const { values, positionals } = parseFlags(argv, COMMON_FLAGS, { min: 1, max: 1, names: "DATASET_ID" });
  if (values.help) return help("dataset");
  const id = positionals[0] ?? "";
  const client = clientOf(values);
  await client.raw("DELETE", `/v1/datasets/${encodeURIComponent(id)}`, { token: tokenOf(values, "the API token") });
  if (values.json) printJson({ id, deleted: true });
  else print(`Dataset ${v(id)} deleted.`);
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[], help: Help) => Promise<number>> = { upload, list, delete: remove };

export async function dataset(argv: string[], help: Help): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") return sub === undefined ? (help("dataset"), 2) : help("dataset");
  const command = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!command) throw new UsageError(`unknown dataset command "${oneLine(sub, 40)}"; use upload, list or delete`);
  return command(rest, help);
}

/**
 * `run --input-file FILE --custom-dataset-type TYPE`: the dataset uploaded (or found) and
 * referenced as workload.dataset.id; null without --input-file.
 */
export async function runDataset(values: Record<string, unknown>, client: ApiClient, token: string): Promise<string | null> {
  const input = typeof values["input-file"] === "string" ? values["input-file"] : undefined;
  const type = typeof values["custom-dataset-type"] === "string" ? values["custom-dataset-type"] : undefined;
  const multi = values["sharegpt-multi-turn"] === true;
  // AIPerf's --fixed-schedule: a mooncake_trace is always replayed on its timestamps here.
  if (values["fixed-schedule"] === true && type !== "mooncake_trace") {
    throw new UsageError(
      "--fixed-schedule replays a trace's timestamps: it goes with --input-file FILE --custom-dataset-type mooncake_trace",
    );
  }
  if (input === undefined) {
    if (type !== undefined) throw new UsageError("--custom-dataset-type goes with --input-file FILE");
    if (multi) throw new UsageError("--sharegpt-multi-turn goes with --input-file FILE --custom-dataset-type sharegpt");
    return null;
  }
  if (type === undefined) throw new UsageError(`--input-file needs --custom-dataset-type (${FILE_TYPES.join(", ")})`);
  if (multi && type !== "sharegpt") throw new UsageError("--sharegpt-multi-turn goes with --custom-dataset-type sharegpt");
  const file = await readDatasetFile(input, type, { multiTurn: multi, fileFlag: "--input-file", typeFlag: "--custom-dataset-type" });
  const { info, uploaded } = await ensureDataset(client, token, file);
  note(describeUpload(input, info, uploaded, file.skipped));
  return info.id;
}
