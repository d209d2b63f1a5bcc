// Which dataset item credit `seq` sends, and when a trace's items are meant to be sent
// (README, "Datasets and workloads"). Both are pure functions of the spec and the seq, so
// the coordinator can hand out item indices (or agents compute them) without storing a
// schedule, and every agent, edge or external, agrees on them.
//
// - sequential: item seq mod items, in file order (AIPerf's `sequential`).
// - random: an independent seeded uniform draw per seq (AIPerf's `random`, with replacement).
// - shuffle: each epoch (items consecutive seqs) visits every item exactly once, in a seeded
//   order that changes every epoch (AIPerf's `shuffle`, its default). The order is a keyed
//   Feistel permutation of [0, items) evaluated one position at a time, so no array of
//   `items` entries is ever built, however large the dataset.

import type { DatasetItem, Sampling } from "./dataset";
import { keyed, mix, prng } from "./prng";

/** The largest dataset indexable: the Feistel domain's halves must fit 32-bit integer operations. */
export const MAX_ITEMS = 2 ** 52;

const key = keyed;

// Salts keep the streams apart: the random draw of seq 5 is unrelated to the shuffle of epoch 5.
const RANDOM_SALT = 0x5bd1e995;
const SHUFFLE_SALT = 0x1b873593;
// Four rounds make a Feistel network a pseudorandom permutation (Luby–Rackoff); six for margin.
const ROUNDS = 6;

function checkArgs(seed: number, seq: number, items: number): void {
  if (!Number.isInteger(items) || items < 1 || items > MAX_ITEMS) {
    throw new RangeError(`items must be an integer from 1 to 2^52, got ${items}`);
  }
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`seq must be a non-negative safe integer, got ${seq}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new RangeError(`seed must be an integer from 0 to 2^32 - 1, got ${seed}`);
}

/** A uniform integer in [0, n) from 53 random bits (two 32-bit draws), so even large n are unbiased in practice. */
function uniformBelow(rng: () => number, n: number): number {
  const high = Math.floor(rng() * 2 ** 26);
  const low = Math.floor(rng() * 2 ** 27);
  return Math.floor(((high * 2 ** 27 + low) / 2 ** 53) * n);
}

/**
 * The position `pos` of [0, items) after a keyed permutation: a balanced Feistel network
 * on the smallest domain of 2^(2h) ≥ items, cycle-walked until the value falls inside
 * [0, items). The domain is under 4 × items, so a walk takes fewer than 4 steps on average;
 * it always ends because the walk follows pos's cycle, which returns to pos. (Feistel
 * networks reach only even permutations: irrelevant to sampling, where each position still
 * gets each item equally often over epochs.)
 */
export function permute(pos: number, items: number, permKey: number): number {
  if (items === 1) return 0;
  let bits = 0;
  while (2 ** bits < items) bits++;
  const h = Math.ceil(bits / 2);
  const half = 2 ** h;
  const mask = half - 1;
  const roundKeys = Array.from({ length: ROUNDS }, (_, r) => mix(permKey ^ Math.imul(r + 1, 0x85ebca6b)));
  const encrypt = (x: number): number => {
    let l = Math.floor(x / half);
    let r = x % half;
    for (const k of roundKeys) {
      const next = (l ^ (mix(r ^ k) & mask)) >>> 0;
      l = r;
      r = next;
    }
    return l * half + r;
  };
  let y = encrypt(pos);
  while (y >= items) y = encrypt(y);
  return y;
}

/** The index of the dataset item that credit `seq` sends. */
export function itemIndex(sampling: Sampling, seed: number, seq: number, items: number): number {
  checkArgs(seed, seq, items);
  switch (sampling) {
    case "sequential":
      return seq % items;
    case "random":
      return uniformBelow(prng(key(seed, seq, RANDOM_SALT)), items);
    case "shuffle":
      return permute(seq % items, items, key(seed, Math.floor(seq / items), SHUFFLE_SALT));
  }
}

/**
 * A mooncake_trace's intended send offsets, in ms from the run's measured start, by item
 * index: (timestamp − the trace's earliest timestamp) / speedup. The earliest timestamp is
 * the first one in a sorted trace, so the first request goes out at once (AIPerf's
 * --fixed-schedule-auto-offset); speedup 2 replays the trace in half its time.
 */
export function replaySlots(items: readonly DatasetItem[], speedup: number): number[] {
  if (!(Number.isFinite(speedup) && speedup > 0)) throw new RangeError(`replaySpeedup must be a number > 0, got ${speedup}`);
  let first = Number.POSITIVE_INFINITY;
  for (const [i, item] of items.entries()) {
    const t = item.timestamp;
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) {
      throw new RangeError(`items[${i}].timestamp must be a number >= 0 (ms) to replay a trace, got ${String(t)}`);
    }
    first = Math.min(first, t);
  }
  return items.map((item) => ((item.timestamp ?? first) - first) / speedup);
}
