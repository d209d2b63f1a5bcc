// Which item each credit sends (sequential, random, shuffle) and a trace's replay offsets:
// pure functions of (sampling, seed, seq, items), the same on every agent.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { itemIndex, permute, replaySlots } from "../contract/dataset-sampling";
import { SAMPLINGS } from "../contract/dataset";

// fast-check runs are seeded, so a failure reproduces and the suite is deterministic.
const FC = { seed: 17, numRuns: 200 };

/** The indices of one epoch (items consecutive seqs from epoch × items). */
const epoch = (seed: number, items: number, e: number) =>
  Array.from({ length: items }, (_, i) => itemIndex("shuffle", seed, e * items + i, items));

describe("sequential sampling", () => {
  it("sends item seq mod items, in file order", () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((seq) => itemIndex("sequential", 9, seq, 3))).toEqual([0, 1, 2, 0, 1, 2, 0]);
    expect(itemIndex("sequential", 0, 2 ** 40 + 7, 10)).toBe((2 ** 40 + 7) % 10);
  });
});

describe("random sampling", () => {
  it("draws the same item for the same seed and seq, and stays inside [0, items)", () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(2 ** 40), fc.integer({ min: 1, max: 2 ** 32 }), (seed, seq, items) => {
        const i = itemIndex("random", seed, seq, items);
        expect(itemIndex("random", seed, seq, items)).toBe(i);
        expect(Number.isInteger(i) && i >= 0 && i < items).toBe(true);
      }),
      FC,
    );
  });

  it("is close to uniform: 100,000 draws over 10 items give each 9.6% to 10.4%", () => {
    const counts = new Array<number>(10).fill(0);
    for (let seq = 0; seq < 100_000; seq++) counts[itemIndex("random", 3, seq, 10)]! += 1;
    for (const c of counts) {
      expect(c).toBeGreaterThan(9_600);
      expect(c).toBeLessThan(10_400);
    }
  });

  it("draws with replacement: some item repeats within a window of items seqs, unlike shuffle", () => {
    const window = Array.from({ length: 50 }, (_, seq) => itemIndex("random", 1, seq, 50));
    expect(new Set(window).size).toBeLessThan(50);
  });

  it("changes with the seed", () => {
    const draws = (seed: number) => Array.from({ length: 20 }, (_, seq) => itemIndex("random", seed, seq, 1000));
    expect(draws(1)).not.toEqual(draws(2));
  });
});

describe("shuffle sampling", () => {
  it("visits every item exactly once per epoch, for any size and seed", () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.integer({ min: 1, max: 300 }), fc.nat(1000), (seed, items, e) => {
        expect(epoch(seed, items, e).sort((a, b) => a - b)).toEqual(Array.from({ length: items }, (_, i) => i));
      }),
      FC,
    );
  });

  it("orders the items differently in different epochs and for different seeds", () => {
    expect(epoch(5, 100, 0)).not.toEqual(epoch(5, 100, 1));
    expect(epoch(5, 100, 0)).not.toEqual(epoch(6, 100, 0));
    // Not the identity: the order is really shuffled.
    expect(epoch(5, 100, 0)).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("is a pure function of (seed, seq, items): recomputing any seq alone gives the same item", () => {
    const whole = epoch(11, 64, 3);
    for (const i of [63, 0, 17]) expect(itemIndex("shuffle", 11, 3 * 64 + i, 64)).toBe(whole[i]);
  });

  it("puts each item at each position about equally often over many epochs", () => {
    // 4 items, 8,000 epochs: each (position, item) pair is expected 2,000 times.
    const seen = Array.from({ length: 4 }, () => new Array<number>(4).fill(0));
    for (let e = 0; e < 8000; e++) epoch(21, 4, e).forEach((item, pos) => (seen[pos]![item]! += 1));
    for (const row of seen) for (const c of row) expect(Math.abs(c - 2000)).toBeLessThan(200);
  });

  it("permutes a huge dataset one position at a time, without building an array", () => {
    const items = 2 ** 40 + 3;
    const positions = [0, 1, 2, 12_345, items - 1];
    const images = positions.map((p) => permute(p, items, 0xdeadbeef));
    for (const y of images) expect(Number.isInteger(y) && y >= 0 && y < items).toBe(true);
    expect(new Set(images).size).toBe(positions.length); // a permutation never maps two positions to one
    expect(itemIndex("shuffle", 1, 2 ** 41 + 9, items)).toBe(itemIndex("shuffle", 1, 2 ** 41 + 9, items));
  });
});

describe("itemIndex's arguments", () => {
  it.each([
    { name: "no items", seed: 0, seq: 0, items: 0, mentions: "items" },
    { name: "fractional items", seed: 0, seq: 0, items: 2.5, mentions: "items" },
    { name: "a negative seq", seed: 0, seq: -1, items: 3, mentions: "seq" },
    { name: "a seed above 2^32 - 1", seed: 2 ** 32, seq: 0, items: 3, mentions: "seed" },
  ])("refuses $name, naming the argument", ({ seed, seq, items, mentions }) => {
    for (const sampling of SAMPLINGS) expect(() => itemIndex(sampling, seed, seq, items)).toThrow(mentions);
  });
});

describe("replaySlots", () => {
  it("gives each item its offset from the earliest timestamp, divided by the speedup", () => {
    const items = [{ timestamp: 1000 }, { timestamp: 1500 }, { timestamp: 1500 }, { timestamp: 4000 }];
    expect(replaySlots(items, 1)).toEqual([0, 500, 500, 3000]);
    expect(replaySlots(items, 2)).toEqual([0, 250, 250, 1500]);
    expect(replaySlots(items, 0.5)).toEqual([0, 1000, 1000, 6000]);
  });

  it("measures from the earliest timestamp even when the trace is not sorted, so no offset is negative", () => {
    expect(replaySlots([{ timestamp: 30 }, { timestamp: 10 }, { timestamp: 20 }], 1)).toEqual([20, 0, 10]);
  });

  it("returns nothing for an empty trace", () => {
    expect(replaySlots([], 1)).toEqual([]);
  });

  it("refuses an item without a timestamp, naming its index", () => {
    expect(() => replaySlots([{ timestamp: 0 }, { inputLength: 5 }], 1)).toThrow("items[1].timestamp");
    expect(() => replaySlots([{ timestamp: -5 }], 1)).toThrow("items[0].timestamp");
  });

  it("refuses a speedup that is not a positive number, naming replaySpeedup", () => {
    for (const s of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => replaySlots([{ timestamp: 0 }], s)).toThrow("replaySpeedup");
  });
});
