import { describe, expect, it } from "vitest";
import { DDSketch } from "../durable/sketch";
import { prng } from "../agent/prompt";

// Deterministic samples: the agents' seeded PRNG and Box–Muller normals.
function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

// Latency-like: median 200 ms, long right tail.
const lognormal = (n: number, seed: number): number[] => {
  const rand = prng(seed);
  return Array.from({ length: n }, () => Math.exp(Math.log(200) + 0.8 * normal(rand)));
};

const uniform = (n: number, seed: number, lo: number, hi: number): number[] => {
  const rand = prng(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * rand());
};

const sketchOf = (values: number[]): DDSketch => {
  const s = new DDSketch();
  for (const v of values) s.add(v);
  return s;
};

const PERCENTILES = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999];
const ALPHA = 0.005;
const EPSILON = 1e-9;

function expectQuantilesWithinAlpha(values: number[], sketch: DDSketch, qs = PERCENTILES): void {
  const sorted = [...values].sort((a, b) => a - b);
  for (const q of qs) {
    // numpy's default (linear) percentile, as AIPerf computes it.
    const rank = q * (sorted.length - 1);
    const lo = sorted[Math.floor(rank)] ?? NaN;
    const hi = sorted[Math.ceil(rank)] ?? NaN;
    const exact = lo + (rank - Math.floor(rank)) * (hi - lo);
    const estimate = sketch.quantile(q) ?? NaN;
    expect(Math.abs(estimate - exact) / exact, `q=${q}`).toBeLessThanOrEqual(ALPHA + EPSILON);
  }
}

function expectSameQuantilesAndStats(a: DDSketch, b: DDSketch): void {
  for (const q of PERCENTILES) expect(a.quantile(q)).toBe(b.quantile(q));
  expect(a.count).toBe(b.count);
  expect(a.min).toBe(b.min);
  expect(a.max).toBe(b.max);
  // Summation order differs between a merge and one pass, so the last bits may too.
  expectRelativelyClose(a.sum, b.sum);
  expectRelativelyClose(a.std ?? NaN, b.std ?? NaN);
}

function expectRelativelyClose(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-12 * Math.abs(expected));
}

describe("percentile definition", () => {
  it("interpolates between ranks like numpy, so a small sample's p99 matches AIPerf's", () => {
    const sketch = new DDSketch();
    for (const v of [1000, 1500, 2000]) sketch.add(v);
    // numpy.percentile([1000, 1500, 2000], 99) == 1990
    expect(Math.abs((sketch.quantile(0.99) ?? NaN) - 1990) / 1990).toBeLessThanOrEqual(ALPHA);
    expect(sketch.quantile(0)).toBe(1000);
    expect(sketch.quantile(1)).toBe(2000);
  });
});

describe("DDSketch accuracy", () => {
  it("answers p1 to p99.9 of 100,000 lognormal latencies within 0.5% of the exact sorted values", () => {
    const values = lognormal(100_000, 1);
    expectQuantilesWithinAlpha(values, sketchOf(values));
  });

  it("answers p1 to p99.9 of 100,000 uniform values within 0.5% of the exact sorted values", () => {
    const values = uniform(100_000, 2, 1, 5_000);
    expectQuantilesWithinAlpha(values, sketchOf(values));
  });

  it("keeps count, sum, min, max, mean and population std exact beside the bins", () => {
    const s = sketchOf([1, 2, 3, 4]);
    expect(s.count).toBe(4);
    expect(s.sum).toBe(10);
    expect(s.min).toBe(1);
    expect(s.max).toBe(4);
    expect(s.mean).toBe(2.5);
    expect(s.std).toBeCloseTo(Math.sqrt(1.25), 12);
  });

  it("counts a weighted value as that many samples", () => {
    const s = new DDSketch();
    s.add(10, 3);
    s.add(20);
    expect(s.count).toBe(4);
    expect(s.sum).toBe(50);
    expect(s.std).toBeCloseTo(Math.sqrt(18.75), 12);
    expect(s.quantile(0.5)).toBeCloseTo(10, 0);
  });

  it("answers zero for ranks that fall among zeros", () => {
    const s = new DDSketch();
    s.add(0, 50);
    s.add(100, 50);
    expect(s.quantile(0.25)).toBe(0);
    expect(Math.abs((s.quantile(0.9) ?? NaN) - 100)).toBeLessThanOrEqual(1);
  });

  it("clamps answers into the observed min and max", () => {
    const s = sketchOf([1000, 1000, 1000]);
    for (const q of [0, 0.5, 1]) expect(s.quantile(q)).toBe(1000);
  });

  it("returns undefined for every statistic of an empty sketch", () => {
    const s = new DDSketch();
    expect([s.quantile(0.5), s.min, s.max, s.mean, s.std]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect([s.count, s.sum]).toEqual([0, 0]);
  });

  it("rejects negative, NaN and infinite values and non-integer weights with a RangeError", () => {
    const s = new DDSketch();
    for (const bad of [-1, Number.NaN, Infinity]) expect(() => s.add(bad)).toThrow(RangeError);
    for (const weight of [0, -1, 1.5]) expect(() => s.add(1, weight)).toThrow(RangeError);
    expect(s.count).toBe(0);
  });

  it("rejects quantiles outside [0, 1]", () => {
    const s = sketchOf([1]);
    for (const q of [-0.1, 1.1, Number.NaN]) expect(() => s.quantile(q)).toThrow(RangeError);
  });
});

describe("DDSketch merge", () => {
  it("gives the same quantiles and stats as one sketch of the union", () => {
    const a = lognormal(50_000, 3);
    const b = uniform(50_000, 4, 50, 800);
    const merged = sketchOf(a);
    merged.merge(sketchOf(b));
    expectSameQuantilesAndStats(merged, sketchOf([...a, ...b]));
  });

  it("leaves a sketch unchanged when merging an empty one, and copies into an empty one", () => {
    const values = lognormal(1_000, 5);
    const s = sketchOf(values);
    s.merge(new DDSketch());
    expect(s.toJSON()).toEqual(sketchOf(values).toJSON());
    const empty = new DDSketch();
    empty.merge(s);
    expect(empty.toJSON()).toEqual(s.toJSON());
  });
});

describe("DDSketch serialization", () => {
  it("round-trips through JSON text with identical quantiles and stats", () => {
    const s = sketchOf([...lognormal(20_000, 6), 0, 0]);
    const back = DDSketch.fromJSON(JSON.parse(JSON.stringify(s)));
    expect(back.toJSON()).toEqual(s.toJSON());
    for (const q of PERCENTILES) expect(back.quantile(q)).toBe(s.quantile(q));
    expect([back.count, back.sum, back.min, back.max, back.std]).toEqual([s.count, s.sum, s.min, s.max, s.std]);
  });

  it("round-trips an empty sketch", () => {
    const json = new DDSketch().toJSON();
    expect(json).toEqual({ n: 0, s: 0, mn: null, mx: null, m2: 0, z: 0, k: [], c: [] });
    expect(DDSketch.fromJSON(json).count).toBe(0);
  });

  it("delta-encodes keys in ascending order", () => {
    const { k } = sketchOf([1, 2, 4, 8]).toJSON();
    expect(k.slice(1).every((delta) => delta >= 1)).toBe(true);
  });
});

describe("DDSketch memory bound", () => {
  it("never keeps more than 2048 bins, and keeps upper quantiles accurate, for values spanning 23 orders of magnitude", () => {
    // At 0.5%, 2048 bins span 8.9 decades: the top 39% of these samples stay at full accuracy.
    const rand = prng(7);
    const values = Array.from({ length: 200_000 }, () => 10 ** (-8 + 23 * rand()));
    const s = sketchOf(values);
    expect(s.toJSON().k.length).toBe(2048);
    // Collapsing folds the lowest bins together, so only lower quantiles lose accuracy.
    expectQuantilesWithinAlpha(values, s, [0.65, 0.75, 0.9, 0.99, 0.999]);
  });

  it("keeps the same 2048 highest bins when collapsed sketches are merged as when the union is added to one", () => {
    const rand = prng(10);
    const a = Array.from({ length: 50_000 }, () => 10 ** (-8 + 12 * rand()));
    const b = Array.from({ length: 50_000 }, () => 10 ** (2 + 12 * rand()));
    const merged = sketchOf(a);
    merged.merge(sketchOf(b));
    expect(merged.toJSON().k.length).toBe(2048);
    expect(merged.toJSON().c).toEqual(sketchOf([...a, ...b]).toJSON().c);
    expect(merged.toJSON().k).toEqual(sketchOf([...a, ...b]).toJSON().k);
  });

  // A 1,000-sample sketch is not the right baseline here: it samples less of the tails,
  // so fills fewer bins (191 vs 358 for this distribution), and its counts have fewer
  // digits. What must hold is an absolute bound that no sample count can exceed.
  it("serializes a million lognormal latencies in under 5 KB", () => {
    const s = sketchOf(lognormal(1_000_000, 8));
    expect(JSON.stringify(s).length).toBeLessThan(5120);
  });

  it("fills no new bins once a bounded range is covered, so 1,000,000 samples serialize within 1.1x of 100,000", () => {
    const small = sketchOf(uniform(100_000, 9, 100, 1_000)).toJSON();
    const large = sketchOf(uniform(1_000_000, 9, 100, 1_000)).toJSON();
    expect(large.k).toEqual(small.k);
    expect(JSON.stringify(large).length).toBeLessThanOrEqual(1.1 * JSON.stringify(small).length + 300);
  });
});
