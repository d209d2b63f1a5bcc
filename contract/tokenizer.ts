// Token counts where a server reports no `usage`, and the mock's usage, by a real BPE (gpt-tokenizer, pure
// JavaScript, so the same counts in workerd and in Node). AIPerf counts with the model's
// own tokenizer; we cannot load a model's, so target.tokenizer picks one of the OpenAI
// encodings edgeperf ships (contract/spec.ts, TOKENIZERS): cl100k_base by default,
// o200k_base for GPT-4o-era and gpt-oss models.
//
// gpt-tokenizer 4.0.0 was chosen over js-tiktoken 1.0.21: 9x the speed (6.6 M tokens/s
// against 0.7 M on a 10,000-word text, cl100k_base), a quarter of the import time, and a
// smaller bundle (+461 KiB gzipped to the Worker for cl100k_base, against +494 KiB).

import { countTokens as cl100kBase } from "gpt-tokenizer/encoding/cl100k_base";
import { countTokens as o200kBase } from "gpt-tokenizer/encoding/o200k_base";
import { DEFAULT_TOKENIZER } from "./spec";
import type { TokenizerName } from "./spec";

// A server's text may contain "<|endoftext|>" and the like: counted as the text it is,
// never refused (gpt-tokenizer throws on special tokens by default).
const AS_TEXT = { disallowedSpecial: new Set<string>() };

const COUNTERS: Record<TokenizerName, (text: string, options: typeof AS_TEXT) => number> = {
  cl100k_base: cl100kBase,
  o200k_base: o200kBase,
};

/**
 * BPE's cost grows with the square of a piece's length: 64,000 letters without a space
 * take a second, a megabyte would take minutes. A server's answer (or, for the mock, a
 * request) may hold such a run, so text is counted in segments of at most SEGMENT
 * characters, cut before a space that starts a word: a place where the encodings'
 * pre-tokenizers cut anyway, so ordinary text counts exactly as in one piece. Only a run
 * longer than SEGMENT with no such space is cut inside, off by at most a token per cut.
 */
const SEGMENT = 256;

/** Tokens in `text` by the encoding `name` (the default one when absent). */
export function countTokens(text: string, name: TokenizerName = DEFAULT_TOKENIZER): number {
  const count = COUNTERS[name];
  let n = 0;
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + SEGMENT);
    if (end < text.length) {
      // The last space in the segment that starts a word: the next segment begins with it.
      let cut = end;
      while (cut > at && !(text[cut] === " " && text[cut + 1] !== undefined && !/\s/.test(text[cut + 1]!))) cut--;
      if (cut > at) end = cut;
    }
    n += count(text.slice(at, end), AS_TEXT);
    at = end;
  }
  return n;
}
