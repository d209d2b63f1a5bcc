// Dataset files (README, "Datasets and workloads"): AIPerf's --custom-dataset-type JSONL
// layouts, checked line by line and normalized to DatasetItem (contract/dataset.ts). The
// Worker validates uploads with this; the CLI computes the same content id before
// uploading, so a dataset the server already holds is never sent twice.
//
// AIPerf's multimodal fields (image, audio, video…) and its other input modes (mooncake's
// text_input and messages) are refused by name: edgeperf sends text only. `texts` (a list
// of strings) is accepted and joined with a newline, as one prompt.

import { DEFAULTS } from "./config";
import { DATASET_TYPES } from "./dataset";
import type { ChatMessage, DatasetItem, DatasetType, Turn } from "./dataset";

/** The largest upload, in bytes, unless the operator's MAX_DATASET_BYTES says otherwise (contract/config.ts). */
export const MAX_DATASET_BYTES = DEFAULTS.maxDatasetBytes;
/** The most items (lines) in one dataset. */
export const MAX_DATASET_ITEMS = 200_000;
/** The longest line, in characters: one item is one request, not a corpus. */
export const MAX_LINE_CHARS = 1_048_576;
/** The most turns in one multi_turn session, and hash ids in one trace line. */
const MAX_TURNS = 1_000;

export interface DatasetLimits {
  maxBytes: number;
  maxItems: number;
}

const DEFAULT_LIMITS: DatasetLimits = { maxBytes: MAX_DATASET_BYTES, maxItems: MAX_DATASET_ITEMS };

/** A refused file: `line` is 1-based (null when the file as a whole is refused). */
export class DatasetError extends Error {
  readonly line: number | null;
  readonly reason: string;
  readonly tooLarge: boolean;
  constructor(line: number | null, reason: string, tooLarge = false) {
    super(line === null ? reason : `line ${line}: ${reason}`);
    this.name = "DatasetError";
    this.line = line;
    this.reason = reason;
    this.tooLarge = tooLarge;
  }
}

export const isDatasetType = (t: unknown): t is DatasetType => typeof t === "string" && (DATASET_TYPES as readonly string[]).includes(t);

type Obj = Record<string, unknown>;

/** A field's problem, said by its path ("turns[0].text must be a string"); the line is added by the caller. */
class Refusal extends Error {}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

// Why each AIPerf field we do not take is refused, so the message helps rather than just says no.
const UNSUPPORTED: Record<string, string> = {
  image: "images are not supported (edgeperf sends text only)",
  images: "images are not supported (edgeperf sends text only)",
  audio: "audio is not supported (edgeperf sends text only)",
  audios: "audio is not supported (edgeperf sends text only)",
  video: "video is not supported (edgeperf sends text only)",
  videos: "video is not supported (edgeperf sends text only)",
  text_input: "is not supported: give input_length (and hash_ids) instead",
  tools: "is not supported",
  role: "is not supported (use messages for roles)",
};

function onlyKnown(o: Obj, path: string, known: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const why = UNSUPPORTED[key];
    const at = path === "" ? key : `${path}.${key}`;
    throw new Refusal(why ? `${at}: ${why}` : `unknown field ${at} (allowed: ${known.join(", ")})`);
  }
}

function intAtLeast(v: unknown, path: string, min: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) throw new Refusal(`${path} must be an integer ≥ ${min}`);
  return v;
}

function msAtLeastZero(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new Refusal(`${path} must be a number of milliseconds ≥ 0`);
  return v;
}

function text(o: Obj, path: string, required: boolean): string | undefined {
  const at = (k: string) => (path === "" ? k : `${path}.${k}`);
  if (o.text !== undefined && o.texts !== undefined) throw new Refusal(`${at("text")} and ${at("texts")} cannot both be set`);
  if (o.texts !== undefined) {
    if (!Array.isArray(o.texts) || o.texts.length === 0) throw new Refusal(`${at("texts")} must be a non-empty list of strings`);
    o.texts.forEach((t, i) => {
      if (typeof t !== "string") throw new Refusal(`${at("texts")}[${i}] must be a string`);
    });
    return (o.texts as string[]).join("\n");
  }
  if (o.text === undefined) {
    if (required) throw new Refusal(`${at("text")} is required (a string)`);
    return undefined;
  }
  if (typeof o.text !== "string") throw new Refusal(`${at("text")} must be a string`);
  return o.text;
}

function messages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw new Refusal("messages must be a non-empty list of {role, content}");
  return v.map((m, i) => {
    if (!isObj(m)) throw new Refusal(`messages[${i}] must be an object {role, content}`);
    onlyKnown(m, `messages[${i}]`, ["role", "content"]);
    if (typeof m.role !== "string" || m.role === "") throw new Refusal(`messages[${i}].role must be a non-empty string`);
    if (typeof m.content !== "string") throw new Refusal(`messages[${i}].content must be a string`);
    return { role: m.role, content: m.content };
  });
}

function checkType(o: Obj, type: DatasetType): void {
  if (o.type !== undefined && o.type !== type) throw new Refusal(`type is "${String(o.type)}" but the dataset is ${type}`);
}

// Fields are set in one fixed order, so the canonical JSON (and the id) never depends on
// the order the file wrote them in.

function singleTurn(o: Obj): DatasetItem {
  onlyKnown(o, "", ["type", "text", "texts", "messages", "output_length"]);
  checkType(o, "single_turn");
  const t = text(o, "", false);
  if (t !== undefined && o.messages !== undefined) throw new Refusal("give text or messages, not both");
  if (t === undefined && o.messages === undefined) throw new Refusal("text (a string) or messages (a list of {role, content}) is required");
  const turn: Turn = t !== undefined ? { text: t } : { messages: messages(o.messages) };
  if (o.output_length !== undefined) turn.outputLength = intAtLeast(o.output_length, "output_length", 1);
  return { turns: [turn] };
}

function multiTurn(o: Obj): DatasetItem {
  onlyKnown(o, "", ["type", "session_id", "turns"]);
  checkType(o, "multi_turn");
  if (o.session_id !== undefined && typeof o.session_id !== "string") throw new Refusal("session_id must be a string");
  if (!Array.isArray(o.turns) || o.turns.length === 0) throw new Refusal("turns must be a non-empty list");
  if (o.turns.length > MAX_TURNS) throw new Refusal(`turns has ${o.turns.length} turns; at most ${MAX_TURNS}`);
  const turns = o.turns.map((raw, i): Turn => {
    const path = `turns[${i}]`;
    if (!isObj(raw)) throw new Refusal(`${path} must be an object with text`);
    onlyKnown(raw, path, ["text", "texts", "delay", "output_length"]);
    const turn: Turn = { text: text(raw, path, true) as string };
    if (raw.output_length !== undefined) turn.outputLength = intAtLeast(raw.output_length, `${path}.output_length`, 1);
    if (raw.delay !== undefined) turn.delayMs = msAtLeastZero(raw.delay, `${path}.delay`);
    return turn;
  });
  return o.session_id !== undefined ? { sessionId: o.session_id as string, turns } : { turns };
}

function mooncake(o: Obj): DatasetItem {
  onlyKnown(o, "", ["type", "timestamp", "input_length", "output_length", "hash_ids"]);
  checkType(o, "mooncake_trace");
  if (o.timestamp === undefined) throw new Refusal("timestamp is required (ms since the trace's start)");
  const item: DatasetItem = {
    timestamp: msAtLeastZero(o.timestamp, "timestamp"),
    inputLength: intAtLeast(o.input_length, "input_length", 1),
    outputLength: intAtLeast(o.output_length, "output_length", 1),
  };
  if (o.hash_ids !== undefined) {
    if (!Array.isArray(o.hash_ids)) throw new Refusal("hash_ids must be a list of integers");
    item.hashIds = o.hash_ids.map((h, i) => intAtLeast(h, `hash_ids[${i}]`, 0));
  }
  return item;
}

const PARSERS: Record<DatasetType, (o: Obj) => DatasetItem> = {
  single_turn: singleTurn,
  multi_turn: multiTurn,
  mooncake_trace: mooncake,
};

/**
 * The file's items, normalized; throws a DatasetError naming the first bad line (1-based,
 * blank lines counted) and why. Blank lines are skipped; a leading byte-order mark and
 * CRLF line ends are accepted.
 */
export function parseDataset(type: DatasetType, text: string, limits: DatasetLimits = DEFAULT_LIMITS): DatasetItem[] {
  if (!isDatasetType(type)) throw new DatasetError(null, `type must be one of ${DATASET_TYPES.join(", ")}`);
  // UTF-16 length is at most the UTF-8 length, so only a long text needs encoding to be measured.
  if (text.length > limits.maxBytes || (text.length * 3 > limits.maxBytes && new TextEncoder().encode(text).byteLength > limits.maxBytes)) {
    throw new DatasetError(null, `the dataset is larger than ${limits.maxBytes} bytes`, true);
  }
  const parse = PARSERS[type];
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split("\n");
  const items: DatasetItem[] = [];
  let lastTimestamp = -1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line.trim() === "") continue;
    const n = i + 1;
    if (line.length > MAX_LINE_CHARS) throw new DatasetError(n, `longer than ${MAX_LINE_CHARS} characters`);
    if (items.length >= limits.maxItems) throw new DatasetError(n, `more than ${limits.maxItems} items`, true);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      const why = e instanceof Error ? e.message.replace(/\s+/g, " ").slice(0, 120) : "";
      throw new DatasetError(n, `not valid JSON${why ? ` (${why})` : ""}`);
    }
    if (!isObj(value)) throw new DatasetError(n, "must be a JSON object");
    let item: DatasetItem;
    try {
      item = parse(value);
    } catch (e) {
      if (e instanceof Refusal) throw new DatasetError(n, e.message);
      throw e;
    }
    if (item.timestamp !== undefined) {
      if (item.timestamp < lastTimestamp) {
        throw new DatasetError(
          n,
          `timestamp ${item.timestamp} is before the previous line's ${lastTimestamp}: timestamps must not decrease`,
        );
      }
      lastTimestamp = item.timestamp;
    }
    items.push(item);
  }
  if (items.length === 0) throw new DatasetError(null, "the dataset has no items (every line is blank)");
  return items;
}

/** The stored form: one normalized item a line, each ending in a newline. */
/** The stored form back to items: one normalized item per line (canonicalJsonl's output). */
export function storedItems(text: string): DatasetItem[] {
  const items: DatasetItem[] = [];
  for (const line of text.split("\n")) if (line !== "") items.push(JSON.parse(line) as DatasetItem);
  return items;
}

export function canonicalJsonl(items: readonly DatasetItem[]): string {
  let out = "";
  for (const item of items) out += `${JSON.stringify(item)}\n`;
  return out;
}

/**
 * The content id: `ds_` + SHA-256 of the type, a newline and the canonical JSONL. The same
 * items of the same type always give the same id, however the file spaced or ordered its fields.
 */
export async function datasetId(type: DatasetType, items: readonly DatasetItem[]): Promise<string> {
  // Web Crypto, as in contract/tokens.ts; not imported from there, because the CLI imports
  // this module and tokens.ts also uses a Workers-only comparison.
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${type}\n${canonicalJsonl(items)}`));
  return `ds_${[...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}
