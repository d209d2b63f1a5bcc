// The coordinator's outstanding credits, stored as leases (the `leases` table,
// run-store.ts): one row per lease with credits still outstanding, its first seq and
// count (a lease's credits are consecutive seqs), the holder's ordinal, how many of its
// first credits are warmup, the intended times (rate mode), each credit's dataset item
// (trace replay) and the offsets still outstanding as ranges (rows.ts). A report rewrites
// each lease it touches once, or deletes it when nothing is left outstanding, so the
// table is bounded by what is in flight and a request costs a fraction of a row written,
// not two (docs/ARCHITECTURE.md, "Cost"). The rows are few and read on every call, so
// they are cached here and written through.

import type { CountingSql } from "./counting-sql";
import type { CreditRow, LeaseRow, Ranges } from "./rows";
import { creditsAt, encodeRanges, leaseOf, rangesOf, sizeOf, subtract } from "./rows";

export const LEASES = `CREATE TABLE IF NOT EXISTS leases (
  first INTEGER PRIMARY KEY, count INTEGER NOT NULL, agent INTEGER NOT NULL, warmup INTEGER NOT NULL, open TEXT NOT NULL, ats TEXT, items TEXT)`;

export class LeaseTable {
  /** Lease rows with outstanding credits, by first seq ascending; null: not loaded. */
  private list: LeaseRow[] | null = null;

  constructor(private readonly db: CountingSql) {}

  /** Forgets the cached rows (after a failed transaction or a wipe). */
  invalidate(): void {
    this.list = null;
  }

  /** The outstanding credits among `count` consecutive seqs from `first` held by agent `ord`. */
  creditsInRange(ord: number, first: number, count: number): CreditRow[] {
    const out: CreditRow[] = [];
    const list = this.leases();
    for (let i = Math.max(0, this.atOrBefore(first)); i < list.length && list[i]!.first < first + count; i++) {
      const l = list[i]!;
      if (l.agent !== ord) continue;
      const from = Math.max(0, first - l.first);
      const to = Math.min(l.count, first + count - l.first) - 1;
      if (from <= to) creditsAt(l, subtract(l.open, [[from, to]]).taken, out);
    }
    return out;
  }

  /**
   * Grants consecutive seqs from `first` to agent `ord` as one lease row: one credit per
   * entry of `ats` (intended times, null in concurrency mode); the first `warmup` are
   * warmup credits; `items`, in a trace replay, each credit's dataset item. Seqs only
   * grow, so the new lease goes last.
   */
  grant(
    ord: number,
    first: number,
    ats: ReadonlyArray<number | null>,
    warmup: number,
    items: ReadonlyArray<number | null> | null = null,
  ): void {
    if (ats.length === 0) return;
    const list = this.leases();
    const last = list[list.length - 1];
    if (last && last.first + last.count > first) throw new Error(`LeaseTable: seq ${first} was granted before.`);
    const lease: LeaseRow = {
      first,
      count: ats.length,
      agent: ord,
      warmup,
      ats: ats.some((a) => a !== null) ? [...ats] : null,
      items: items?.some((i) => i !== null) ? [...items] : null,
      open: [[0, ats.length - 1]],
    };
    this.put(lease);
    list.push(lease);
  }

  /**
   * Takes the named credits out of their leases and answers those that were outstanding.
   * Each lease touched is written once: rewritten with what is left, or deleted when
   * nothing is. Callers run inside a transaction and throw to refuse a report, which
   * undoes the writes (and the coordinator drops this cache).
   */
  take(seqs: readonly number[]): CreditRow[] {
    const list = this.leases();
    const out: CreditRow[] = [];
    const gone = new Set<LeaseRow>();
    const runs = rangesOf(seqs);
    let r = 0;
    let i = runs.length > 0 ? Math.max(0, this.atOrBefore(runs[0]![0])) : list.length;
    // One walk over the sorted runs and the sorted leases; a run may span several leases.
    while (r < runs.length && i < list.length) {
      const l = list[i]!;
      const end = l.first + l.count - 1;
      const [a, b] = runs[r]!;
      if (b < l.first) {
        r++;
        continue;
      }
      if (a > end) {
        i++;
        continue;
      }
      const take: Ranges = [];
      for (let k = r; k < runs.length && runs[k]![0] <= end; k++)
        take.push([Math.max(runs[k]![0], l.first) - l.first, Math.min(runs[k]![1], end) - l.first]);
      const { left, taken } = subtract(l.open, take);
      if (taken.length > 0) {
        creditsAt(l, taken, out);
        l.open = left;
        if (left.length === 0) {
          this.db.exec("DELETE FROM leases WHERE first = ?", l.first);
          gone.add(l);
        } else this.db.exec("UPDATE leases SET open = ? WHERE first = ?", encodeRanges(left), l.first);
      }
      i++;
    }
    if (gone.size > 0) this.list = list.filter((l) => !gone.has(l));
    return out;
  }

  /** Deletes every lease of agent `ord` and answers their outstanding credits. */
  takeOfAgent(ord: number): CreditRow[] {
    const list = this.leases();
    const mine = list.filter((l) => l.agent === ord);
    if (mine.length === 0) return [];
    this.db.exec("DELETE FROM leases WHERE agent = ?", ord);
    this.list = list.filter((l) => l.agent !== ord);
    const out: CreditRow[] = [];
    for (const l of mine) creditsAt(l, l.open, out);
    return out;
  }

  /** Measured credits outstanding per holder (before a drain timeout or force stop abandons them all). */
  measuredOutstandingByHolder(): Array<{ ord: number; n: number }> {
    const n = new Map<number, number>();
    for (const l of this.leases()) {
      // The first `warmup` offsets are warmup credits; the rest are measured.
      const measured =
        l.warmup === 0 ? sizeOf(l.open) : l.warmup >= l.count ? 0 : sizeOf(subtract(l.open, [[l.warmup, l.count - 1]]).taken);
      n.set(l.agent, (n.get(l.agent) ?? 0) + measured);
    }
    return [...n].filter(([, k]) => k > 0).map(([ord, k]) => ({ ord, n: k }));
  }

  /** Deletes every lease (the holders' outstanding counts are the caller's: RunStore.deleteAllCredits). */
  clear(): void {
    this.db.exec("DELETE FROM leases");
    this.list = [];
  }

  /**
   * Writes leases made from an earlier layout's credit rows (RunStore.upgrade), then drops
   * the cache so the next read takes them from storage.
   */
  importLeases(leases: readonly LeaseRow[]): void {
    for (const l of leases) this.put(l);
    this.list = null;
  }

  private put(l: LeaseRow): void {
    this.db.exec(
      "INSERT INTO leases (first, count, agent, warmup, open, ats, items) VALUES (?, ?, ?, ?, ?, ?, ?)",
      l.first,
      l.count,
      l.agent,
      l.warmup,
      encodeRanges(l.open),
      l.ats === null ? null : JSON.stringify(l.ats),
      l.items === null ? null : JSON.stringify(l.items),
    );
  }

  private leases(): LeaseRow[] {
    this.list ??= this.db.exec("SELECT * FROM leases ORDER BY first").map(leaseOf);
    return this.list;
  }

  /** Index of the last lease whose first seq is at most `seq` (-1: none). */
  private atOrBefore(seq: number): number {
    const list = this.leases();
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.first <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}
