// Row shapes of a run's agents, credits and leases (run-store.ts, lease-table.ts), and the encoding of a
// lease's outstanding seqs: plain data, no runtime imports, so views and the CLI can share
// the types without Workers types.

export interface AgentRow {
  id: string;
  ord: number;
  name: string | null;
  region: string | null;
  joinedAt: number;
  lastSeen: number;
  expiresAt: number;
  alive: boolean;
  outstanding: number;
  inflight: number;
  shareSent: number;
  shareAcked: number;
  calls: number;
}

export interface CreditRow {
  seq: number;
  /** The holder's ordinal (AgentRow.ord). */
  agent: number;
  at: number | null;
  warmup: boolean;
  /** A trace replay's dataset item (its index in the trace); null otherwise. */
  item: number | null;
}

/** Inclusive runs of consecutive integers [first, last], sorted and disjoint. */
export type Ranges = Array<[number, number]>;

/**
 * One lease as stored: `count` consecutive seqs from `first`, held by agent `agent`; the
 * first `warmup` are warmup credits; `ats` are the intended send times by offset (rate
 * mode; null in concurrency mode); `open` are the offsets still outstanding. A credit is
 * outstanding exactly when its offset is in `open`; the row goes when `open` is empty.
 */
export interface LeaseRow {
  first: number;
  count: number;
  agent: number;
  warmup: number;
  ats: ReadonlyArray<number | null> | null;
  /** Trace replay: each credit's dataset item by offset; null otherwise (items then follow from seqs). */
  items: ReadonlyArray<number | null> | null;
  open: Ranges;
}

/** An `agents` row as read from SQLite. */
export const agentOf = (r: Record<string, unknown>): AgentRow => ({
  id: String(r.id),
  ord: Number(r.ord),
  name: r.name === null ? null : String(r.name),
  region: r.region === null ? null : String(r.region),
  joinedAt: Number(r.joined_at),
  lastSeen: Number(r.last_seen),
  expiresAt: Number(r.expires_at),
  alive: Number(r.alive) === 1,
  outstanding: Number(r.outstanding),
  inflight: Number(r.inflight),
  shareSent: Number(r.share_sent),
  shareAcked: Number(r.share_acked),
  calls: Number(r.calls),
});

/** A `leases` row as read from SQLite. */
export const leaseOf = (r: Record<string, unknown>): LeaseRow => ({
  first: Number(r.first),
  count: Number(r.count),
  agent: Number(r.agent),
  warmup: Number(r.warmup),
  ats: r.ats === null ? null : (JSON.parse(String(r.ats)) as Array<number | null>),
  items: r.items === null || r.items === undefined ? null : (JSON.parse(String(r.items)) as Array<number | null>),
  open: decodeRanges(String(r.open)),
});

/** Sorted distinct integers (duplicates ignored) as runs of consecutive values. */
export function rangesOf(xs: readonly number[]): Ranges {
  const sorted = [...xs].sort((a, b) => a - b);
  const runs: Ranges = [];
  for (const x of sorted) {
    const last = runs[runs.length - 1];
    if (last && x === last[1] + 1) last[1] = x;
    else if (!last || x > last[1]) runs.push([x, x]);
  }
  return runs;
}

export const sizeOf = (r: Ranges): number => r.reduce((n, [a, b]) => n + b - a + 1, 0);

/**
 * `open` without `take` (both sorted and disjoint), and what of `take` was in `open`:
 * one merge walk, linear in both.
 */
export function subtract(open: Ranges, take: Ranges): { left: Ranges; taken: Ranges } {
  const left: Ranges = [];
  const taken: Ranges = [];
  let j = 0;
  for (const [a0, b] of open) {
    let a = a0;
    while (j < take.length && take[j]![1] < a) j++;
    let k = j;
    while (a <= b && k < take.length && take[k]![0] <= b) {
      const [ta, tb] = take[k]!;
      if (ta > a) left.push([a, ta - 1]);
      const from = Math.max(a, ta);
      const to = Math.min(b, tb);
      taken.push([from, to]);
      a = to + 1;
      if (tb <= b) k++;
      else break;
    }
    if (a <= b) left.push([a, b]);
    j = k;
  }
  return { left, taken };
}

/** `0-63,70,72-80`: a lease's open offsets, as short as their shape allows. */
export const encodeRanges = (r: Ranges): string => r.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");

export function decodeRanges(s: string): Ranges {
  if (s === "") return [];
  return s.split(",").map((part) => {
    const dash = part.indexOf("-");
    return dash < 0 ? [Number(part), Number(part)] : [Number(part.slice(0, dash)), Number(part.slice(dash + 1))];
  });
}

/** The credits of `lease` at the offsets `offsets`, appended to `out`. */
export function creditsAt(lease: LeaseRow, offsets: Ranges, out: CreditRow[] = []): CreditRow[] {
  for (const [a, b] of offsets)
    for (let i = a; i <= b; i++)
      out.push({
        seq: lease.first + i,
        agent: lease.agent,
        at: lease.ats?.[i] ?? null,
        warmup: i < lease.warmup,
        item: lease.items?.[i] ?? null,
      });
  return out;
}

/**
 * Credits stored one row each (the layout before leases), sorted by seq, as lease rows:
 * consecutive seqs of one holder, warmup ones first, make one lease.
 */
export function leasesOfCredits(rows: ReadonlyArray<Record<string, unknown>>): LeaseRow[] {
  const out: LeaseRow[] = [];
  let cur: { first: number; agent: number; ats: Array<number | null>; warm: number } | null = null;
  const flush = () => {
    if (!cur) return;
    const n = cur.ats.length;
    out.push({
      first: cur.first,
      count: n,
      agent: cur.agent,
      warmup: cur.warm,
      ats: cur.ats.some((a) => a !== null) ? cur.ats : null,
      items: null,
      open: [[0, n - 1]],
    });
  };
  for (const r of rows) {
    const seq = Number(r.seq);
    const agent = Number(r.agent);
    const warm = Number(r.warmup) === 1;
    if (!cur || seq !== cur.first + cur.ats.length || agent !== cur.agent || (warm && cur.warm < cur.ats.length)) {
      flush();
      cur = { first: seq, agent, ats: [], warm: 0 };
    }
    cur.ats.push(r.at === null || r.at === undefined ? null : Number(r.at));
    if (warm) cur.warm++;
  }
  flush();
  return out;
}
