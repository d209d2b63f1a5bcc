// Seeded synthetic prompts. Each credit's request is a pure function of (seed, seq):
// any agent, edge or external, sending credit 17 sends the same prompt and asks for the
// same output length, so a run is reproducible however its credits were spread.
// A prompt of N tokens is N words of the vocabulary joined by spaces, and that is exactly
// N tokens by every encoding edgeperf ships (contract/spec.ts, TOKENIZERS): each word is
// one token with and without its leading space, and BPE never merges across the space
// before a word. A test counts the prompts with each encoding, so a word that breaks this
// cannot be added; counting at run time would cost CPU on every request for nothing.
// The same holds for joined pieces: a shared prefix, then the prompt; a trace's blocks,
// then its filler. Each piece is words, and pieces are joined by one space.
//
// Dataset items (README, "Datasets and workloads") become jobs here too: a text or a
// conversation is sent as it is and counted with the spec's tokenizer; a mooncake_trace
// item's prompt is built from its hash ids, one shared block of MOONCAKE_BLOCK_TOKENS
// words per id, each block a pure function of (seed, hash id).

import type { ChatMessage, DatasetItem } from "../contract/dataset";
import { MOONCAKE_BLOCK_TOKENS } from "../contract/dataset";
import { keyed, prng } from "../contract/prng";
import type { RunSpec, TokenizerName } from "../contract/spec";
import { DEFAULT_TOKENIZER } from "../contract/spec";
import { countTokens } from "../contract/tokenizer";

export { prng };

export interface Job {
  inputTokens: number;
  outputTokens: number;
  /** The text to send; with `messages`, their contents joined (joinMessages), for APIs that take one text. */
  prompt: string;
  /** A conversation to send as it is (dataset messages, or a multi_turn history and this turn). */
  messages?: ChatMessage[];
}

const VOCABULARY = [
  "the",
  "of",
  "and",
  "to",
  "in",
  "is",
  "was",
  "for",
  "on",
  "are",
  "with",
  "as",
  "at",
  "be",
  "by",
  "this",
  "had",
  "not",
  "but",
  "from",
  "or",
  "have",
  "one",
  "all",
  "were",
  "they",
  "which",
  "she",
  "you",
  "their",
  "there",
  "an",
  "her",
  "would",
  "we",
  "him",
  "been",
  "has",
  "when",
  "who",
  "will",
  "more",
  "no",
  "if",
  "out",
  "so",
  "said",
  "what",
  "up",
  "its",
  "about",
  "into",
  "than",
  "them",
  "can",
  "only",
  "other",
  "new",
  "some",
  "time",
  "could",
  "these",
  "two",
  "may",
] as const;

/** A bound on drawn lengths: a large stddev must not make one prompt megabytes long. */
export const MAX_TOKENS = 262_144;

/** A generator keyed by (seed, n, salt) (contract/prng.ts). */
function streamFor(seed: number, n: number, salt: number): () => number {
  return prng(keyed(seed, n, salt));
}

// Salts keep the streams apart; 0 is the credit's own stream, as it always was.
const PREFIX_CHOICE = 0x3c6ef372;
const PREFIX_TEXT = 0xa54ff53a;
const TRACE_BLOCK = 0x510e527f;
const TRACE_FILLER = 0x9b05688c;

/** The generator for one credit. seq may exceed 2^32, so both halves are mixed in. */
export function rngFor(seed: number, seq: number): () => number {
  return streamFor(seed, seq, 0);
}

/** One N(mean, stddev) draw (Box–Muller), rounded and clamped to [1, MAX_TOKENS]. */
function tokenCount(rng: () => number, d: { mean: number; stddev: number }): number {
  const u1 = 1 - rng(); // (0, 1]: log is finite
  const u2 = rng();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  const n = Math.round(d.mean + d.stddev * z);
  return Math.min(MAX_TOKENS, Math.max(1, Number.isFinite(n) ? n : d.mean));
}

export function promptText(rng: () => number, words: number): string {
  const out = new Array<string>(words);
  for (let i = 0; i < words; i++) out[i] = VOCABULARY[Math.floor(rng() * VOCABULARY.length)] ?? "the";
  return out.join(" ");
}

/**
 * A small memo for texts that many requests share (prefixes, trace blocks): building one
 * costs a draw per word, and a run asks for the same few again and again. Bounded, oldest
 * entry out first, so a trace with millions of distinct hash ids cannot grow it.
 */
function memo(capacity: number): (key: string, make: () => string) => string {
  const kept = new Map<string, string>();
  return (key, make) => {
    const hit = kept.get(key);
    if (hit !== undefined) return hit;
    const text = make();
    kept.set(key, text);
    if (kept.size > capacity) kept.delete(kept.keys().next().value ?? key);
    return text;
  };
}

// Up to 1,024 blocks of 512 words (about 2.5 MB) and 64 prefixes.
const blocks = memo(1024);
const prefixes = memo(64);

/** The first `words` words of a text of words joined by single spaces. */
function firstWords(text: string, words: number): string {
  let at = -1;
  for (let i = 0; i < words; i++) {
    at = text.indexOf(" ", at + 1);
    if (at < 0) return text;
  }
  return text.slice(0, at);
}

/** Which shared prefix credit `seq` starts with: a seeded uniform draw of its own stream. */
export function prefixIndex(seed: number, seq: number, prompts: number): number {
  return Math.floor(streamFor(seed, seq, PREFIX_CHOICE)() * prompts);
}

/** Shared prefix `index` of `tokens` words: the same text on every agent, for every seq that draws it. */
export function prefixText(seed: number, index: number, tokens: number): string {
  return prefixes(`${seed}:${index}:${tokens}`, () => promptText(streamFor(seed, index, PREFIX_TEXT), tokens));
}

/** The block a trace's hash id stands for: MOONCAKE_BLOCK_TOKENS words, a pure function of (seed, hash id). */
export function traceBlock(seed: number, hashId: number): string {
  return blocks(`${seed}:${hashId}`, () => promptText(streamFor(seed, hashId, TRACE_BLOCK), MOONCAKE_BLOCK_TOKENS));
}

/** Lengths and prompt for credit `seq`. The draws are made in a fixed order, so each is stable. */
export function jobFor(workload: RunSpec["workload"], seq: number): Job {
  const rng = rngFor(workload.seed, seq);
  const inputTokens = tokenCount(rng, workload.inputTokens);
  const outputTokens = tokenCount(rng, workload.outputTokens);
  const prompt = promptText(rng, inputTokens);
  const shared = workload.sharedPrefix;
  if (shared === undefined) return { inputTokens, outputTokens, prompt };
  // As AIPerf's --num-prefix-prompts: the prefix comes on top of the drawn input length.
  const prefix = prefixText(workload.seed, prefixIndex(workload.seed, seq, shared.prompts), shared.tokens);
  return { inputTokens: shared.tokens + inputTokens, outputTokens, prompt: `${prefix} ${prompt}` };
}

/**
 * A mooncake_trace item's prompt: the blocks of its hash ids in order, cut after
 * inputLength words (AIPerf gives the last block the tokens that remain), then seeded
 * filler words up to inputLength where the blocks are too few. Without inputLength the
 * blocks are whole.
 */
export function tracePrompt(seed: number, seq: number, item: DatasetItem): string {
  const ids = item.hashIds ?? [];
  const length = item.inputLength ?? ids.length * MOONCAKE_BLOCK_TOKENS;
  if (!Number.isInteger(length) || length < 1) {
    throw new RangeError("a mooncake_trace item needs inputLength (an integer >= 1) or hashIds");
  }
  const parts: string[] = [];
  let left = length;
  for (const id of ids) {
    if (left === 0) break;
    const block = traceBlock(seed, id);
    parts.push(left >= MOONCAKE_BLOCK_TOKENS ? block : firstWords(block, left));
    left -= Math.min(left, MOONCAKE_BLOCK_TOKENS);
  }
  if (left > 0) parts.push(promptText(streamFor(seed, seq, TRACE_FILLER), left));
  return parts.join(" ");
}

/** A conversation as one text, for APIs that take one (completions, embeddings, templates). */
export function joinMessages(messages: readonly ChatMessage[]): string {
  return messages.map((m) => m.content).join("\n\n");
}

/**
 * Turn `turnIndex` of a dataset item for credit `seq`, after `history`: the earlier turns'
 * prompts and the server's real answers, which the engine keeps. With no history and a
 * plain text the job is that text; otherwise it carries the conversation as messages.
 * Output length: the turn's, else the item's, else the workload's draw for seq.
 * inputTokens counts what is sent by `tokenizer`: a trace item's built prompt is exact by
 * construction; messages count their contents, not the chat template around them.
 */
export function turnRequest(
  workload: RunSpec["workload"],
  seq: number,
  item: DatasetItem,
  turnIndex: number,
  history: readonly ChatMessage[],
  tokenizer: TokenizerName = DEFAULT_TOKENIZER,
): Job {
  const rng = rngFor(workload.seed, seq);
  const turns = item.turns ?? [];
  let own: ChatMessage[];
  let outputTokens: number;
  let ownTokens: number | undefined;
  let plainText: boolean;
  if (turns.length === 0) {
    if (turnIndex !== 0) throw new RangeError(`turnIndex must be 0 for a mooncake_trace item, got ${turnIndex}`);
    outputTokens = item.outputLength ?? tokenCount(rng, workload.outputTokens);
    const prompt = tracePrompt(workload.seed, seq, item);
    ownTokens = item.inputLength ?? (item.hashIds?.length ?? 0) * MOONCAKE_BLOCK_TOKENS;
    own = [{ role: "user", content: prompt }];
    plainText = true;
  } else {
    const turn = turns[turnIndex];
    if (turn === undefined || !Number.isInteger(turnIndex)) {
      throw new RangeError(`turnIndex must be an integer from 0 to ${turns.length - 1}, got ${turnIndex}`);
    }
    outputTokens = turn.outputLength ?? item.outputLength ?? tokenCount(rng, workload.outputTokens);
    if (turn.messages !== undefined) own = turn.messages;
    else if (turn.text !== undefined) own = [{ role: "user", content: turn.text }];
    else throw new RangeError(`turns[${turnIndex}] has neither text nor messages`);
    plainText = turn.messages === undefined;
  }
  const count = (m: ChatMessage) => countTokens(m.content, tokenizer);
  if (plainText && history.length === 0) {
    const prompt = own[0]?.content ?? "";
    return { inputTokens: ownTokens ?? countTokens(prompt, tokenizer), outputTokens, prompt };
  }
  const messages = [...history, ...own];
  const historyTokens = history.reduce((n, m) => n + count(m), 0);
  const inputTokens = historyTokens + (ownTokens ?? own.reduce((n, m) => n + count(m), 0));
  return { inputTokens, outputTokens, prompt: joinMessages(messages), messages };
}

/** Request `turnIndex` of a dataset item with no history before it (a single_turn or mooncake_trace item's only one). */
export function jobForItem(
  workload: RunSpec["workload"],
  seq: number,
  item: DatasetItem,
  turnIndex = 0,
  tokenizer: TokenizerName = DEFAULT_TOKENIZER,
): Job {
  return turnRequest(workload, seq, item, turnIndex, [], tokenizer);
}
