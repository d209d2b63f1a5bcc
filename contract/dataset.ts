// Datasets (README, "Datasets and workloads"): what an uploaded JSONL file becomes once
// it is validated. The Worker stores the normalized items in R2 under the upload's content
// hash; agents read them from there (edge agents through the binding, external agents
// through GET /v1/datasets/:id/items) and cache them; the coordinator only hands out item
// indices with the credits (itemIndex below), never the data.

/** AIPerf's --custom-dataset-type names. */
export const DATASET_TYPES = ["single_turn", "multi_turn", "mooncake_trace"] as const;
export type DatasetType = (typeof DATASET_TYPES)[number];

export const SAMPLINGS = ["sequential", "random", "shuffle"] as const;
export type Sampling = (typeof SAMPLINGS)[number];

export interface ChatMessage {
  role: string;
  content: string;
}

/** One request's worth of input. */
export interface Turn {
  /** A plain prompt (single_turn `text`, a multi_turn turn's `text`). */
  text?: string;
  /** A whole conversation to send as is (single_turn `messages`). */
  messages?: ChatMessage[];
  /** Output tokens to ask for (`output_length`); absent: the workload's outputTokens draw. */
  outputLength?: number;
  /** multi_turn: ms to wait before sending this turn (`delay`). */
  delayMs?: number;
}

/**
 * One dataset item, normalized. single_turn: one turn. multi_turn: one session, its turns
 * in order. mooncake_trace: no turns; the prompt is built from inputLength and hashIds
 * (shared prefix blocks), sent at `timestamp` ms after the trace's first request.
 */
export interface DatasetItem {
  sessionId?: string;
  turns?: Turn[];
  timestamp?: number;
  inputLength?: number;
  outputLength?: number;
  hashIds?: number[];
}

/** What GET /v1/datasets lists and POST /v1/datasets answers. */
export interface DatasetInfo {
  id: string;
  type: DatasetType;
  items: number;
  bytes: number;
  createdAt: string;
}

/** A RunSpec's `workload.dataset`. */
export interface DatasetRef {
  id: string;
  sampling: Sampling;
}

/** A dataset's id: "ds_" and 64 lowercase hex digits (its content hash). */
export const DATASET_ID = /^ds_[0-9a-f]{64}$/;

/**
 * Tokens per mooncake_trace hash id: AIPerf's --prompt-input-tokens-block-size default
 * (InputTokensDefaults.BLOCK_SIZE). Each id in an item's `hash_ids` stands for one block
 * of this many prompt tokens, shared by every item naming that id (agent/prompt.ts).
 */
export const MOONCAKE_BLOCK_TOKENS = 512;
