// DDSketch (Masson, Rim, Lee, VLDB 2019): a mergeable quantile sketch whose answers are
// within ALPHA relative error of the exact element, in memory bounded by MAX_BINS.
//
// Our own rather than @datadog/sketches-js: that package needs an undeclared protobufjs
// to serialize and drops the exact summary stats we report beside the quantiles.
//
// Conventions:
// - Values are non-negative finite numbers; anything else is a RangeError.
// - Weights are positive safe integers, so `count` is a number of samples and a
//   serialized sketch can be checked for consistency (n = z + sum(c)).
// - Every statistic of an empty sketch (quantile, min, max, mean, std) is `undefined`;
//   `count` and `sum` are 0. metrics.ts turns `undefined` into JSON `null`.

// 0.5%: a 250 ms TTFT is reported within ±1.25 ms (1% gave ±2.5 ms, more than the ±2 ms target in docs/BENCHMARKS.md
// ±2 ms fidelity target), at about twice the bins of 1%.
export const ALPHA = 0.005;
const GAMMA = (1 + ALPHA) / (1 - ALPHA);
const LOG_GAMMA = Math.log(GAMMA);
// Values at or below this go to the zero bucket: log() of them would need thousands of
// extra bins for magnitudes no benchmark measures.
const MIN_INDEXABLE = 1e-9;
const MAX_BINS = 2048;

const keyOf = (value: number): number => Math.ceil(Math.log(value) / LOG_GAMMA);
// The midpoint (in relative terms) of the bucket (gamma^(key-1), gamma^key].
const valueOf = (key: number): number => (2 * Math.exp(key * LOG_GAMMA)) / (GAMMA + 1);

/**
 * Serialized sketch, stored in Durable Object storage by the coordinator.
 * n count, s sum, mn/mx min/max (null when empty), m2 sum of squared deviations from
 * the mean (Welford), z zero-bucket count, k bin keys ascending and delta-encoded
 * (first absolute, then differences >= 1), c the count of each bin.
 */
export interface SketchData {
  n: number;
  s: number;
  mn: number | null;
  mx: number | null;
  m2: number;
  z: number;
  k: number[];
  c: number[];
}

export class DDSketch {
  private bins = new Map<number, number>();
  private zeroCount = 0;
  private n = 0;
  private total = 0;
  private m2 = 0;
  private lo = Infinity;
  private hi = -Infinity;
  // Lowest bin key, cached only while the store is full; undefined means "recompute".
  private floorKey: number | undefined;

  get count(): number {
    return this.n;
  }

  get sum(): number {
    return this.total;
  }

  get min(): number | undefined {
    return this.n > 0 ? this.lo : undefined;
  }

  get max(): number | undefined {
    return this.n > 0 ? this.hi : undefined;
  }

  get mean(): number | undefined {
    return this.n > 0 ? this.total / this.n : undefined;
  }

  /** Population standard deviation (numpy's default, ddof = 0), as AIPerf reports. */
  get std(): number | undefined {
    return this.n > 0 ? Math.sqrt(Math.max(0, this.m2 / this.n)) : undefined;
  }

  add(value: number, weight = 1): void {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`sketch values must be finite and non-negative, got ${value}`);
    }
    if (!Number.isSafeInteger(weight) || weight <= 0) {
      throw new RangeError(`sketch weights must be positive integers, got ${weight}`);
    }
    // West's weighted Welford update; computed before mutating so an overflow leaves
    // the sketch untouched (the serialized stats must stay finite to be JSON).
    const oldMean = this.n > 0 ? this.total / this.n : 0;
    const n = this.n + weight;
    const total = this.total + value * weight;
    // The two factors share a sign in exact arithmetic; max() absorbs rounding so m2
    // never dips below 0 (fromJSON would reject it).
    const m2 = this.m2 + Math.max(0, weight * (value - oldMean) * (value - total / n));
    if (!Number.isFinite(total) || !Number.isFinite(m2)) {
      throw new RangeError("sketch sum overflows a double");
    }
    this.n = n;
    this.total = total;
    this.m2 = m2;
    this.lo = Math.min(this.lo, value);
    this.hi = Math.max(this.hi, value);
    if (value <= MIN_INDEXABLE) this.zeroCount += weight;
    else this.addToBin(keyOf(value), weight);
  }

  /** Adds every sample of `other` (Chan et al.'s parallel variance for m2). */
  merge(other: DDSketch): void {
    if (other.n === 0) return;
    const n = this.n + other.n;
    const total = this.total + other.total;
    const delta = other.total / other.n - (this.n > 0 ? this.total / this.n : 0);
    const m2 = this.m2 + other.m2 + ((delta * delta * this.n) / n) * other.n;
    if (!Number.isFinite(total) || !Number.isFinite(m2)) {
      throw new RangeError("sketch sum overflows a double");
    }
    this.n = n;
    this.total = total;
    this.m2 = m2;
    this.lo = Math.min(this.lo, other.lo);
    this.hi = Math.max(this.hi, other.hi);
    this.zeroCount += other.zeroCount;
    for (const [key, c] of other.bins) this.addToBin(key, c);
  }

  clone(): DDSketch {
    return DDSketch.fromJSON(this.toJSON());
  }

  /**
   * The q-quantile as numpy's default (linear) percentile and AIPerf define it: the
   * values at ranks floor(r) and ceil(r), r = q * (count - 1), interpolated, each
   * within ALPHA relative error; rank 0 and the top rank are the exact min and max.
   * Answers for ranks inside collapsed low bins lose the guarantee, which needs values
   * spanning more than 17 orders of magnitude.
   */
  quantile(q: number): number | undefined {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
    if (this.n === 0) return undefined;
    const rank = q * (this.n - 1);
    const below = Math.floor(rank);
    const low = this.valueAtRank(below);
    if (rank === below) return low;
    return low + (rank - below) * (this.valueAtRank(below + 1) - low);
  }

  private valueAtRank(rank: number): number {
    if (rank <= 0) return this.lo;
    if (rank >= this.n - 1) return this.hi;
    let estimate = 0;
    let seen = this.zeroCount;
    if (seen <= rank) {
      for (const key of this.sortedKeys()) {
        seen += this.bins.get(key) ?? 0;
        if (seen > rank) {
          estimate = valueOf(key);
          break;
        }
      }
    }
    return Math.min(this.hi, Math.max(this.lo, estimate));
  }

  toJSON(): SketchData {
    const keys = this.sortedKeys();
    return {
      n: this.n,
      s: this.total,
      mn: this.min ?? null,
      mx: this.max ?? null,
      m2: this.m2,
      z: this.zeroCount,
      k: keys.map((key, i) => (i === 0 ? key : key - (keys[i - 1] ?? 0))),
      c: keys.map((key) => this.bins.get(key) ?? 0),
    };
  }

  /**
   * Rebuilds a sketch from `toJSON` output. Only the coordinator writes these (agents
   * report single results, checked at the door), so the document is trusted as written.
   */
  static fromJSON(d: SketchData): DDSketch {
    const sketch = new DDSketch();
    let key = 0;
    d.k.forEach((delta, i) => {
      key = i === 0 ? delta : key + delta;
      sketch.bins.set(key, d.c[i] ?? 0);
    });
    sketch.n = d.n;
    sketch.zeroCount = d.z;
    sketch.total = d.s;
    sketch.m2 = d.m2;
    if (d.n > 0) {
      sketch.lo = d.mn ?? 0;
      sketch.hi = d.mx ?? 0;
    }
    return sketch;
  }

  private sortedKeys(): number[] {
    return [...this.bins.keys()].sort((a, b) => a - b);
  }

  // Collapsing-lowest store: once MAX_BINS keys exist, anything below the lowest key
  // is counted in it, and a new higher key pushes the lowest bin into the next one up.
  // The kept bins are therefore always the highest keys seen, so tail latencies (the
  // quantiles we care about) stay accurate; the lowest key is cached so a full store
  // costs a scan only when a new high key arrives, not on every add.
  private addToBin(key: number, c: number): void {
    const existing = this.bins.get(key);
    if (existing !== undefined) {
      this.bins.set(key, existing + c);
      return;
    }
    if (this.bins.size < MAX_BINS) {
      this.bins.set(key, c);
      this.floorKey = undefined;
      return;
    }
    const floor = (this.floorKey ??= this.lowestKey());
    if (key < floor) {
      this.bins.set(floor, (this.bins.get(floor) ?? 0) + c);
      return;
    }
    const folded = this.bins.get(floor) ?? 0;
    this.bins.delete(floor);
    this.bins.set(key, c);
    const next = this.lowestKey();
    this.bins.set(next, (this.bins.get(next) ?? 0) + folded);
    this.floorKey = next;
  }

  private lowestKey(): number {
    let lowest = Infinity;
    for (const key of this.bins.keys()) lowest = Math.min(lowest, key);
    return lowest;
  }
}
