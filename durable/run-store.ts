// SQLite layout of one RunCoordinator. Everything needed to continue after eviction,
// redeploy or a crash lives here; nothing else is authoritative.
//
//   meta      one row per key: run (static config), state (RunState), spec, auth, metrics,
//             schedule (rate cursor), colos and ticks (what each agent said at join, by
//             ordinal). Small JSON documents of bounded size.
//   agents    one row per agent that joined (≤ MAX_AGENTS): lease expiry, share, counters.
//   leases    one row per lease with credits still OUTSTANDING: its first seq and count (a
//             lease's credits are consecutive seqs), the holder's ordinal, how many of its
//             first credits are warmup, the intended times `at` (rate mode, a JSON array),
//             each credit's dataset item in a trace replay (`items`), and the offsets still outstanding as ranges (`0-63,70`, rows.ts). A report
//             rewrites each lease it touches once, or deletes it when nothing is left
//             outstanding, so the table is bounded by what is in flight and a request costs
//             a fraction of a row written, not two (docs/ARCHITECTURE.md, "Cost"). A lease
//             has at most MAX_LEASE_WANT (1,000) credits: its row stays under ~30 KB, far
//             below the 2 MB row limit.
//   calls     idempotency keys: the last KEEP_CALLS lease requestIds and reportIds per
//             agent with their answers, in KEEP_CALLS slots per agent overwritten in turn
//             (one row written per call, not an insert and a delete); cleared when the run
//             completes (nothing can be leased or settled after that). Older retries are
//             still safe: every seq settles once.
//   slots     rate mode and trace replay: intended send times of credits returned while
//             running (with a replay's item), reused before new slots so the schedule
//             keeps its shape.
//   meta replay:N   trace replay: the trace's send offsets, REPLAY_CHUNK a row, written once
//             at creation; meta replayCursor: the next trace item to hand out.
//
// Agent and lease rows are few (≤ MAX_AGENTS; leases ≤ what agents may hold) and read on
// every call, so they are cached here and written through; the coordinator drops the
// caches when a transaction fails. `rowsWritten` sums what every statement wrote
// (SqlStorageCursor.rowsWritten: what Cloudflare bills), for tests and benchmarks.

// An agent has one coordinator call under way at a time and retries it at once, so a
// short window suffices; a longer one would only make storage grow with the run.
export const KEEP_CALLS = 4;
/** The `calls` rows of joins are kept under this ordinal (no agent has it), one slot per agent. */
const JOINS = -1;
type CallKind = "lease" | "report" | "join";

export type { AgentRow, CreditRow, LeaseRow } from "./rows";
import type { AgentRow, CreditRow, LeaseRow, Ranges } from "./rows";
import { agentOf, creditsAt, encodeRanges, leaseOf, leasesOfCredits, rangesOf, sizeOf, subtract } from "./rows";

/** Trace offsets per meta row: 20,000 numbers of at most ~20 characters is under 0.5 MB. */
const REPLAY_CHUNK = 20_000;

/** Rate mode and trace replay: an intended send time (ms after the measured start) not yet granted, and a replay's item. */
export interface Slot {
  at: number;
  item: number | null;
}

type Row = Record<string, SqlStorageValue>;

const LEASES = `CREATE TABLE IF NOT EXISTS leases (
  first INTEGER PRIMARY KEY, count INTEGER NOT NULL, agent INTEGER NOT NULL, warmup INTEGER NOT NULL, open TEXT NOT NULL, ats TEXT, items TEXT)`;
const CALLS = `CREATE TABLE IF NOT EXISTS calls (
  agent INTEGER NOT NULL, slot INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, answer TEXT NOT NULL,
  PRIMARY KEY (agent, slot)) WITHOUT ROWID`;
const TABLES = `
  CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, ord INTEGER NOT NULL, name TEXT, region TEXT,
    joined_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    alive INTEGER NOT NULL, outstanding INTEGER NOT NULL, inflight INTEGER NOT NULL,
    share_sent INTEGER NOT NULL, share_acked INTEGER NOT NULL, calls INTEGER NOT NULL);
  ${LEASES};
  ${CALLS};
  CREATE TABLE IF NOT EXISTS slots (at REAL NOT NULL, item INTEGER);
`;

/** Meta keys of what agents said at join, one value per agent ordinal. */
type JoinedKey = "colos" | "ticks";

export class RunStore {
  /** Agent rows by ordinal (ordinals are 0, 1, 2… in joining order); null: not loaded. */
  private agentList: AgentRow[] | null = null;
  /** What agents said at join, by ordinal: meta "colos" and "ticks", each parsed once. */
  private joinLists = new Map<JoinedKey, Array<unknown>>();
  private agentIndex = new Map<string, AgentRow>();
  /** Lease rows with outstanding credits, by first seq ascending; null: not loaded. */
  private leaseList: LeaseRow[] | null = null;
  /** A trace replay's send offsets (meta replay:N); null: not loaded. Never changes once written. */
  private replay: number[] | null = null;
  /** Rows written by this instance's statements (in memory: it starts again after eviction). */
  private written = 0;

  constructor(private readonly sql: SqlStorage) {}

  /** Runs one statement to its end and counts the rows it wrote. */
  private exec(query: string, ...params: SqlStorageValue[]): Row[] {
    const cursor = this.sql.exec(query, ...params);
    const rows = cursor.toArray();
    this.written += cursor.rowsWritten;
    return rows;
  }

  /** Rows written by this instance so far; `noteWrites` adds writes made outside SQL (setAlarm is billed as one). */
  get rowsWritten(): number {
    return this.written;
  }

  noteWrites(n: number): void {
    this.written += n;
  }

  /**
   * Whether this object holds a run. Checked before any table is touched, so a request
   * for an unknown (or wiped) run id never leaves an empty object behind.
   */
  exists(): boolean {
    return this.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").length > 0;
  }

  /** Creates the tables; only when a run is created. */
  init(): void {
    this.sql.exec(TABLES);
  }

  /**
   * Brings a run stored by an earlier version to this layout (a deploy restarts every
   * object mid-run): credits as one row each become lease rows (consecutive seqs of one
   * holder, one lease each), and calls keyed by number become slots. Inside the caller's
   * transaction; a no-op for runs stored by this version.
   */
  upgrade(): void {
    const tables = new Map(
      this.exec("SELECT name, sql FROM sqlite_master WHERE type = 'table'").map((r) => [String(r.name), String(r.sql)]),
    );
    const oldCalls = tables.get("calls")?.includes(" n INTEGER") === true;
    // Slots gained the replayed item (trace replay); runs stored before it never replay.
    if (tables.has("slots") && !tables.get("slots")!.includes("item")) this.exec("ALTER TABLE slots ADD COLUMN item INTEGER");
    if (!tables.has("credits") && !oldCalls) return;
    if (tables.has("credits")) {
      this.exec(LEASES);
      for (const l of leasesOfCredits(this.exec("SELECT seq, agent, at, warmup FROM credits ORDER BY seq"))) this.putLease(l);
      this.exec("DROP TABLE credits");
    }
    if (oldCalls) {
      const old = this.exec("SELECT agent, kind, key, n, answer FROM calls ORDER BY agent, n");
      this.exec("DROP TABLE calls");
      this.exec(CALLS);
      let joins = 0;
      for (const r of old) {
        const slot = Number(r.agent) === JOINS ? joins++ : Number(r.n) % KEEP_CALLS;
        this.putCall(Number(r.agent), slot, r.kind as CallKind, String(r.key), String(r.answer));
      }
    }
    this.invalidate();
  }

  /** Forgets cached rows: after a failed transaction (its writes were undone) or a wipe. */
  invalidate(): void {
    this.replay = null;
    this.agentList = null;
    this.agentIndex = new Map();
    this.joinLists = new Map();
    this.leaseList = null;
  }

  getMeta<T>(k: string): T | null {
    const row = this.exec("SELECT v FROM meta WHERE k = ?", k)[0];
    return row ? (JSON.parse(String(row.v)) as T) : null;
  }

  putMeta(k: string, v: unknown): void {
    this.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, JSON.stringify(v));
  }

  // ── Agents (cached, written through) ───────────────────────────────────────

  private loadAgents(): AgentRow[] {
    if (this.agentList === null) {
      this.agentList = this.exec("SELECT * FROM agents ORDER BY ord").map(agentOf);
      this.agentIndex = new Map(this.agentList.map((a) => [a.id, a]));
    }
    return this.agentList;
  }

  /** All agents in joining order (a copy: callers may keep it while rows change). */
  agents(): AgentRow[] {
    return [...this.loadAgents()];
  }

  agent(id: string): AgentRow | null {
    this.loadAgents();
    return this.agentIndex.get(id) ?? null;
  }

  agentCount(): number {
    return this.loadAgents().length;
  }

  putAgent(a: AgentRow): void {
    const list = this.loadAgents();
    if (a.ord !== list.length && list[a.ord]?.id !== a.id) throw new Error(`RunStore: agent ordinal ${a.ord} is not the next or its own.`);
    this.exec(
      `INSERT INTO agents (id, ord, name, region, joined_at, last_seen, expires_at, alive, outstanding, inflight, share_sent, share_acked, calls)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen, expires_at = excluded.expires_at, alive = excluded.alive,
         outstanding = excluded.outstanding, inflight = excluded.inflight, share_sent = excluded.share_sent,
         share_acked = excluded.share_acked, calls = excluded.calls`,
      a.id,
      a.ord,
      a.name,
      a.region,
      a.joinedAt,
      a.lastSeen,
      a.expiresAt,
      a.alive ? 1 : 0,
      a.outstanding,
      a.inflight,
      a.shareSent,
      a.shareAcked,
      a.calls,
    );
    const row = { ...a };
    list[a.ord] = row;
    this.agentIndex.set(a.id, row);
  }

  // ── Credits, stored as leases (cached, written through) ───────────────────

  private leases(): LeaseRow[] {
    this.leaseList ??= this.exec("SELECT * FROM leases ORDER BY first").map(leaseOf);
    return this.leaseList;
  }

  /** Index of the last lease whose first seq is at most `seq` (-1: none). */
  private leaseAtOrBefore(seq: number): number {
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

  private putLease(l: LeaseRow): void {
    this.exec(
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

  /** The outstanding credits among `count` consecutive seqs from `first` held by agent `ord`. */
  creditsInRange(ord: number, first: number, count: number): CreditRow[] {
    const out: CreditRow[] = [];
    const list = this.leases();
    for (let i = Math.max(0, this.leaseAtOrBefore(first)); i < list.length && list[i]!.first < first + count; i++) {
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
  insertCredits(
    ord: number,
    first: number,
    ats: ReadonlyArray<number | null>,
    warmup: number,
    items: ReadonlyArray<number | null> | null = null,
  ): void {
    if (ats.length === 0) return;
    const list = this.leases();
    const last = list[list.length - 1];
    if (last && last.first + last.count > first) throw new Error(`RunStore: seq ${first} was granted before.`);
    const lease: LeaseRow = {
      first,
      count: ats.length,
      agent: ord,
      warmup,
      ats: ats.some((a) => a !== null) ? [...ats] : null,
      items: items?.some((i) => i !== null) ? [...items] : null,
      open: [[0, ats.length - 1]],
    };
    this.putLease(lease);
    list.push(lease);
  }

  /**
   * Takes the named credits out of their leases and answers those that were outstanding.
   * Each lease touched is written once: rewritten with what is left, or deleted when
   * nothing is. Callers run inside a transaction and throw to refuse a report, which
   * undoes the writes (and the coordinator drops this cache).
   */
  takeCredits(seqs: readonly number[]): CreditRow[] {
    const list = this.leases();
    const out: CreditRow[] = [];
    const gone = new Set<LeaseRow>();
    const runs = rangesOf(seqs);
    let r = 0;
    let i = runs.length > 0 ? Math.max(0, this.leaseAtOrBefore(runs[0]![0])) : list.length;
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
          this.exec("DELETE FROM leases WHERE first = ?", l.first);
          gone.add(l);
        } else this.exec("UPDATE leases SET open = ? WHERE first = ?", encodeRanges(left), l.first);
      }
      i++;
    }
    if (gone.size > 0) this.leaseList = list.filter((l) => !gone.has(l));
    return out;
  }

  /** Deletes every lease of agent `ord` and answers their outstanding credits. */
  takeCreditsOfAgent(ord: number): CreditRow[] {
    const list = this.leases();
    const mine = list.filter((l) => l.agent === ord);
    if (mine.length === 0) return [];
    this.exec("DELETE FROM leases WHERE agent = ?", ord);
    this.leaseList = list.filter((l) => l.agent !== ord);
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

  deleteAllCredits(): void {
    this.exec("DELETE FROM leases");
    this.leaseList = [];
    this.exec("UPDATE agents SET outstanding = 0 WHERE outstanding <> 0");
    if (this.agentList) for (const a of this.agentList) this.putCached({ ...a, outstanding: 0 });
  }

  /** The Cloudflare colo each agent said it runs in, by ordinal (meta "colos"; set at join, never changed). */
  colos(): Array<string | null> {
    return this.joined<string>("colos");
  }

  setColo(ord: number, colo: string | null): void {
    this.setJoined("colos", ord, colo);
  }

  /** How often each agent's measuring clock ticks (ms), by ordinal (meta "ticks"; set at join, never changed); null where it did not say. */
  clockTicks(): Array<number | null> {
    return this.joined<number>("ticks");
  }

  setClockTick(ord: number, tickMs: number): void {
    this.setJoined("ticks", ord, tickMs);
  }

  /** A list of what agents said at join, by ordinal, read from meta once. */
  private joined<T>(key: JoinedKey): Array<T | null> {
    let list = this.joinLists.get(key);
    if (!list) {
      list = this.getMeta<Array<T | null>>(key) ?? [];
      this.joinLists.set(key, list);
    }
    return list as Array<T | null>;
  }

  /** Stores `value` at `ord` in such a list (nulls before it where needed). */
  private setJoined<T>(key: JoinedKey, ord: number, value: T | null): void {
    const list = [...this.joined<T>(key)];
    while (list.length <= ord) list.push(null);
    list[ord] = value;
    this.putMeta(key, list);
    this.joinLists.set(key, list);
  }

  private putCached(a: AgentRow): void {
    this.agentList![a.ord] = a;
    this.agentIndex.set(a.id, a);
  }

  // ── Idempotency ────────────────────────────────────────────────────────────

  call(ord: number, kind: CallKind, key: string): string | null {
    const row = this.exec("SELECT answer FROM calls WHERE agent = ? AND kind = ? AND key = ?", ord, kind, key)[0];
    return row ? String(row.answer) : null;
  }

  private putCall(ord: number, slot: number, kind: CallKind, key: string, answer: string): void {
    this.exec(
      `INSERT INTO calls (agent, slot, kind, key, answer) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(agent, slot) DO UPDATE SET kind = excluded.kind, key = excluded.key, answer = excluded.answer`,
      ord,
      slot,
      kind,
      key,
      answer,
    );
  }

  /** Records the agent's `n`th answered call in slot n mod KEEP_CALLS, over the call KEEP_CALLS before it. */
  recordCall(ord: number, kind: CallKind, key: string, n: number, answer: string): void {
    this.putCall(ord, n % KEEP_CALLS, kind, key, answer);
  }

  /** Joins by requestId, under the pseudo-ordinal JOINS: all kept (at most MAX_AGENTS), since many agents may join at once. */
  joinedBy(requestId: string): string | null {
    return this.call(JOINS, "join", requestId);
  }

  /** A join's record, in the slot of the agent it created (`ord`). */
  recordJoin(requestId: string, agentId: string, ord: number): void {
    this.putCall(JOINS, ord, "join", requestId, agentId);
  }

  /** Once the run is complete no call can change anything: its answers are not kept. */
  clearCalls(): void {
    this.exec("DELETE FROM calls");
  }

  // ── Trace replay ──────────────────────────────────────────────────────────

  /** Stores a trace's send offsets at creation, REPLAY_CHUNK to a meta row (a row stays far under 2 MB). */
  putReplayOffsets(offsets: readonly number[]): void {
    for (let i = 0, k = 0; i < offsets.length; i += REPLAY_CHUNK, k++) this.putMeta(`replay:${k}`, offsets.slice(i, i + REPLAY_CHUNK));
    this.putMeta("replayItems", offsets.length);
    this.replay = [...offsets];
  }

  /** The trace's send offsets by item (empty when the run replays no trace); read once, then cached. */
  replayOffsets(): readonly number[] {
    if (this.replay === null) {
      const n = this.getMeta<number>("replayItems") ?? 0;
      const all: number[] = [];
      for (let k = 0; all.length < n; k++) {
        const chunk = this.getMeta<number[]>(`replay:${k}`);
        if (chunk === null) break;
        all.push(...chunk);
      }
      this.replay = all;
    }
    return this.replay;
  }

  // ── Rate-mode slots ────────────────────────────────────────────────────────

  takeSlots(limit: number, upTo: number): Slot[] {
    const rows = this.exec("SELECT rowid, at, item FROM slots WHERE at <= ? ORDER BY at LIMIT ?", upTo, limit);
    if (rows.length > 0)
      this.exec("DELETE FROM slots WHERE rowid IN (SELECT value FROM json_each(?))", JSON.stringify(rows.map((r) => r.rowid)));
    return rows.map((r) => ({ at: Number(r.at), item: r.item === null ? null : Number(r.item) }));
  }

  putSlot(slot: Slot): void {
    this.exec("INSERT INTO slots (at, item) VALUES (?, ?)", slot.at, slot.item);
  }
}
