// The one seeded PRNG. Reproducibility is part of the contract: the coordinator's arrival
// schedule and every agent's prompts (edge or external, in workerd or Node) draw from it,
// so a run with the same seed sends the same requests at the same intended times.

/** mulberry32's step: the next state and a uniform draw in [0, 1). */
export function mulberry32Step(state: number): [value: number, next: number] {
  const s = (state + 0x6d2b79f5) >>> 0;
  let x = s;
  x = Math.imul(x ^ (x >>> 15), x | 1);
  x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
  return [((x ^ (x >>> 14)) >>> 0) / 4294967296, s];
}

/** mulberry32 as a generator: tiny, fast, and plenty for arrival jitter, words and lengths. */
export function prng(state: number): () => number {
  let s = state >>> 0;
  return () => {
    const [value, next] = mulberry32Step(s);
    s = next;
    return value;
  };
}

/** A splitmix32-style finalizer: spreads a 32-bit key into an independent-looking stream's seed. */
export function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** A 32-bit seed keyed by (seed, n, salt); n may exceed 2^32 (or be negative), so both of its halves are mixed in. */
export function keyed(seed: number, n: number, salt: number): number {
  const lo = n >>> 0;
  const hi = Math.floor(n / 4294967296) >>> 0;
  return mix(mix((seed ^ salt) >>> 0) ^ mix(lo ^ 0x9e3779b9) ^ mix(hi + 0x7f4a7c15));
}
