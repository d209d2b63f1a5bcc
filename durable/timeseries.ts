// Per-second buckets for charts: completed, failed, output tokens, and latency/TTFT
// quantiles, by the second a request ended (on the coordinator's clock). Size is
// bounded whatever the run's length: past MAX_BUCKETS, neighbouring buckets merge and
// the bucket width doubles (downsampling).
//
// Quantiles are exact up to DDSketch's 0.5% only while a bucket is "open" (its sketches
// kept); once OPEN_BUCKETS newer buckets exist and the newest starts OPEN_SECONDS after
// it, its p50/p90/p99 are frozen as numbers (a late result still counts, unranked).
// When frozen buckets merge, their quantiles combine approximately: count-weighted means
// for p50 and p90, the larger for p99 and max. Charts need shape, not audit precision;
// the run's own metrics come from whole-run sketches, never from these buckets.

import { DDSketch } from "./sketch";
import type { SketchData } from "./sketch";
import type { Bucket, Quantiles, TimeSeriesView } from "../contract/results";
export type { Bucket, Quantiles, TimeSeriesView };

export const MAX_BUCKETS = 240;
const OPEN_BUCKETS = 3;
/**
 * And any bucket that starts less than this before the newest one: results come in up to a
 * report cycle after they ended (agents send their end times), so a slice of 0.1 s must stay
 * open as long as one of a second does, or its quantiles would hold only the first reports.
 */
const OPEN_SECONDS = 3;

interface StoredBucket extends Omit<Bucket, "latency" | "ttft"> {
  latency: Quantiles | SketchData | null;
  ttft: Quantiles | SketchData | null;
}

export interface TimeSeriesData {
  width: number;
  buckets: StoredBucket[];
}

const isSketch = (q: Quantiles | SketchData): q is SketchData => "k" in q;

function freeze(s: DDSketch): Quantiles | null {
  if (s.count === 0) return null;
  return { p50: s.quantile(0.5) ?? 0, p90: s.quantile(0.9) ?? 0, p99: s.quantile(0.99) ?? 0, max: s.max ?? 0 };
}

function combine(a: Quantiles | null, na: number, b: Quantiles | null, nb: number): Quantiles | null {
  if (!a || na === 0) return b;
  if (!b || nb === 0) return a;
  const w = (x: number, y: number) => (x * na + y * nb) / (na + nb);
  return { p50: w(a.p50, b.p50), p90: w(a.p90, b.p90), p99: Math.max(a.p99, b.p99), max: Math.max(a.max, b.max) };
}

export class TimeSeries {
  private constructor(
    private width: number,
    private buckets: Map<number, { b: StoredBucket; lat: DDSketch | null; ttft: DDSketch | null }>,
  ) {}

  /** An empty series whose buckets (the exports' timeslices) start `widthSeconds` wide. */
  static empty(widthSeconds = 1): TimeSeries {
    return new TimeSeries(widthSeconds, new Map());
  }

  static fromJSON(data: TimeSeriesData | null): TimeSeries {
    if (!data) return TimeSeries.empty();
    const map = new Map<number, { b: StoredBucket; lat: DDSketch | null; ttft: DDSketch | null }>();
    for (const b of data.buckets) {
      const lat = b.latency && isSketch(b.latency) ? DDSketch.fromJSON(b.latency) : null;
      const ttft = b.ttft && isSketch(b.ttft) ? DDSketch.fromJSON(b.ttft) : null;
      map.set(b.t, { b, lat, ttft });
    }
    return new TimeSeries(data.width, map);
  }

  /** One settled measured request that ended `endSeconds` after the measured phase began. */
  add(endSeconds: number, r: { ok: boolean; latencyMs: number; ttftMs?: number | undefined; outputTokens?: number | undefined }): void {
    const t = Math.max(0, Math.floor(endSeconds / this.width) * this.width);
    let slot = this.buckets.get(t);
    if (!slot) {
      slot = { b: { t, completed: 0, failed: 0, outputTokens: 0, latency: null, ttft: null }, lat: new DDSketch(), ttft: new DDSketch() };
      this.buckets.set(t, slot);
      this.freezeOld();
      if (this.buckets.size > MAX_BUCKETS) this.downsample();
    }
    if (!r.ok) {
      slot.b.failed++;
      return;
    }
    slot.b.completed++;
    slot.b.outputTokens += r.outputTokens ?? 0;
    // A late result for a frozen bucket still counts; only its quantiles stay as they were.
    slot.lat?.add(r.latencyMs);
    if (r.ttftMs !== undefined) slot.ttft?.add(r.ttftMs);
  }

  private freezeOld(): void {
    const keys = [...this.buckets.keys()].sort((a, b) => b - a);
    const newest = keys[0] ?? 0;
    for (const k of keys.slice(OPEN_BUCKETS)) {
      if (newest - k < OPEN_SECONDS) continue;
      const slot = this.buckets.get(k)!;
      if (slot.lat) slot.b.latency = freeze(slot.lat);
      if (slot.ttft) slot.b.ttft = freeze(slot.ttft);
      slot.lat = null;
      slot.ttft = null;
    }
  }

  private downsample(): void {
    this.freezeAll();
    const width = this.width * 2;
    const merged = new Map<number, { b: StoredBucket; lat: DDSketch | null; ttft: DDSketch | null }>();
    for (const t of [...this.buckets.keys()].sort((a, b) => a - b)) {
      const { b } = this.buckets.get(t)!;
      const nt = Math.floor(t / width) * width;
      const into = merged.get(nt);
      if (!into) {
        merged.set(nt, { b: { ...b, t: nt }, lat: null, ttft: null });
        continue;
      }
      const a = into.b;
      a.latency = combine(a.latency as Quantiles | null, a.completed, b.latency as Quantiles | null, b.completed);
      a.ttft = combine(a.ttft as Quantiles | null, a.completed, b.ttft as Quantiles | null, b.completed);
      a.completed += b.completed;
      a.failed += b.failed;
      a.outputTokens += b.outputTokens;
    }
    this.width = width;
    this.buckets = merged;
  }

  /** Freezes every bucket's quantiles: when the run is complete no result can arrive late. */
  freezeAll(): void {
    for (const slot of this.buckets.values()) {
      if (slot.lat) slot.b.latency = freeze(slot.lat);
      if (slot.ttft) slot.b.ttft = freeze(slot.ttft);
      slot.lat = null;
      slot.ttft = null;
    }
  }

  toJSON(): TimeSeriesData {
    const buckets = [...this.buckets.values()]
      .sort((a, b) => a.b.t - b.b.t)
      .map(({ b, lat, ttft }) => ({ ...b, latency: lat ? lat.toJSON() : b.latency, ttft: ttft ? ttft.toJSON() : b.ttft }));
    return { width: this.width, buckets };
  }

  view(): TimeSeriesView {
    const buckets = [...this.buckets.values()]
      .sort((a, b) => a.b.t - b.b.t)
      .map(({ b, lat, ttft }) => ({
        ...b,
        // Keys are index × width in floating point (3 × 0.1 = 0.30000000000000004); the
        // document shows the start as written (0.3). The keys stay as stored.
        t: Math.round(b.t * 1e6) / 1e6,
        latency: lat ? freeze(lat) : (b.latency as Quantiles | null),
        ttft: ttft ? freeze(ttft) : (b.ttft as Quantiles | null),
      }));
    return { bucketSeconds: this.width, buckets };
  }
}
