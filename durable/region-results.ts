// Results per region (README, "Results per region"): what users in different places see,
// the reason to generate load from the edge. Each agent belongs to one region: the region
// it was placed in or named at join (edge agents: their location hint), else the
// Cloudflare colo it runs in ("local" in wrangler dev), else "unknown".
//
// Stored in the coordinator's `meta` rows, written in the same transactions as the run's
// own metrics: "regions" (the keys, in first-seen order, and what each abandoned) and one
// "region:<i>" row per key with that region's RunMetrics. One row per region keeps each
// under the 2 MB row limit whatever the number of regions; at most MAX_REGIONS keys, the
// rest counted under "other", so storage is bounded. Frozen at completion like the run's
// metrics, so a finished run stores the same few kilobytes per region whatever its size.

import type { ResultItem } from "../contract/protocol";
import type { RegionView } from "../contract/results";
import { RunMetrics } from "./metrics";
import type { RunMetricsData } from "./metrics";
import type { AgentRow } from "./rows";
import type { Goodput } from "../contract/goodput";

export const MAX_REGIONS = 16;
export const OTHER_REGION = "other";

interface RegionIndex {
  keys: string[];
  /** Measured credits abandoned, per key by position (lease expiry, drain timeout, force stop). */
  abandoned: number[];
}

interface Store {
  getMeta<T>(k: string): T | null;
  putMeta(k: string, v: unknown): void;
}

/** The region an agent's results count under. */
export function regionOf(agent: Pick<AgentRow, "region">, colo: string | null | undefined): string {
  return agent.region ?? colo ?? "unknown";
}

export class RegionResults {
  private index: RegionIndex | null = null;
  private readonly metrics = new Map<number, RunMetrics>();

  constructor(private readonly store: Store) {}

  invalidate(): void {
    this.index = null;
    this.metrics.clear();
  }

  private indexNow(): RegionIndex {
    this.index ??= this.store.getMeta<RegionIndex>("regions") ?? { keys: [], abandoned: [] };
    return this.index;
  }

  /** The slot of `key`, opened on first use; past MAX_REGIONS keys, "other". */
  private slot(key: string): number {
    const index = this.indexNow();
    let i = index.keys.indexOf(key);
    if (i >= 0) return i;
    if (index.keys.length >= MAX_REGIONS - 1 && key !== OTHER_REGION) return this.slot(OTHER_REGION);
    index.keys.push(key);
    index.abandoned.push(0);
    i = index.keys.length - 1;
    this.metrics.set(i, RunMetrics.empty());
    this.store.putMeta("regions", index);
    return i;
  }

  private metricsOf(i: number): RunMetrics {
    let m = this.metrics.get(i);
    if (!m) {
      m = RunMetrics.fromJSON(this.store.getMeta<RunMetricsData>(`region:${i}`) ?? RunMetrics.empty().toJSON());
      this.metrics.set(i, m);
    }
    return m;
  }

  /** Settled measured results of one agent's report (inside the coordinator's transaction). */
  add(key: string, results: readonly ResultItem[], goodput?: Goodput): void {
    if (results.length === 0) return;
    const i = this.slot(key);
    const m = this.metricsOf(i);
    for (const r of results) m.add(r, goodput);
    this.store.putMeta(`region:${i}`, m.toJSON());
  }

  abandon(key: string, n: number): void {
    if (n <= 0) return;
    const i = this.slot(key);
    const index = this.indexNow();
    index.abandoned[i] = (index.abandoned[i] ?? 0) + n;
    this.store.putMeta("regions", index);
  }

  /** At completion: each region keeps its final document instead of its sketches. */
  freeze(durationMs: number): void {
    const index = this.indexNow();
    index.keys.forEach((_, i) => {
      const m = this.metricsOf(i);
      m.freeze(durationMs);
      this.store.putMeta(`region:${i}`, m.toJSON());
    });
  }

  /** The metrics document of each region (for thresholds), over the run's benchmark duration. */
  documents(durationMs: number): Map<string, ReturnType<RunMetrics["document"]>> {
    const out = new Map<string, ReturnType<RunMetrics["document"]>>();
    this.indexNow().keys.forEach((key, i) => out.set(key, this.metricsOf(i).document(durationMs)));
    return out;
  }

  /** The regions block of the snapshot: agents (with their keys), counts and metrics per region. */
  view(durationMs: number, agents: ReadonlyArray<{ key: string }>): Record<string, RegionView> {
    const index = this.indexNow();
    const filed = agents.map((a) => this.known(a.key));
    const keys = new Set([...index.keys, ...filed]);
    // Entries, not assignment: a region may be named anything printable, "__proto__" included.
    return Object.fromEntries(
      [...keys].map((key) => {
        const i = index.keys.indexOf(key);
        const m = i >= 0 ? this.metricsOf(i) : RunMetrics.empty();
        const view: RegionView = {
          agents: filed.filter((k) => k === key).length,
          counts: { completed: m.completed, failed: m.failed, abandoned: i >= 0 ? (index.abandoned[i] ?? 0) : 0 },
          metrics: m.document(durationMs),
        };
        return [key, view];
      }),
    );
  }

  /** An agent's key as the index would file it (a new key past the cap is "other"). */
  private known(key: string): string {
    const index = this.indexNow();
    return index.keys.includes(key) || index.keys.length < MAX_REGIONS - 1 ? key : OTHER_REGION;
  }
}
