// Seeded synthetic prompts. Each credit's request is a pure function of (seed, seq):
// any agent, edge or external, sending credit 17 sends the same prompt and asks for the
// same output length, so a run is reproducible however its credits were spread.
// A prompt of N tokens is N words of the vocabulary joined by spaces, and that is exactly
// N tokens by every encoding edgeperf ships (contract/spec.ts, TOKENIZERS): each word is
// one token with and without its leading space, and BPE never merges across the space
// before a word. A test counts the prompts with each encoding, so a word that breaks this
// cannot be added; counting at run time would cost CPU on every request for nothing.

import { prng } from "../contract/prng";
import type { RunSpec } from "../contract/spec";

export { prng };

export interface Job {
  inputTokens: number;
  outputTokens: number;
  prompt: string;
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

// splitmix32-style finalizer: spreads (seed, seq) into independent-looking streams.
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** The generator for one credit. seq may exceed 2^32, so both halves are mixed in. */
export function rngFor(seed: number, seq: number): () => number {
  const lo = seq >>> 0;
  const hi = Math.floor(seq / 4294967296) >>> 0;
  return prng(mix(mix(seed >>> 0) ^ mix(lo ^ 0x9e3779b9) ^ mix(hi + 0x7f4a7c15)));
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

/** Lengths and prompt for credit `seq`. The draws are made in a fixed order, so each is stable. */
export function jobFor(workload: RunSpec["workload"], seq: number): Job {
  const rng = rngFor(workload.seed, seq);
  const inputTokens = tokenCount(rng, workload.inputTokens);
  const outputTokens = tokenCount(rng, workload.outputTokens);
  return { inputTokens, outputTokens, prompt: promptText(rng, inputTokens) };
}
