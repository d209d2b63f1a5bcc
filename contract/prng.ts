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
