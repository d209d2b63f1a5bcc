// SQLite layout of one RunCoordinator. Everything needed to continue after eviction,
// redeploy or a crash lives here; nothing else is authoritative.
//
//   meta      one row per key: run (static config), state (RunState), spec, auth, metrics,
//             schedule (rate cursor), colos and ticks (what each agent said at join, by
//             ordinal). Small JSON documents of bounded size.
//   agents    one row per agent that joined (≤ MAX_AGENTS): lease expiry, share, counters.
//   leases    one row per lease with credits still OUTSTANDING, its outstanding offsets as
//             ranges (lease-table.ts): bounded by what is in flight, a fraction of a row
//             written per request (docs/ARCHITECTURE.md, "Cost"). A lease has at most
//             MAX_LEASE_WANT (1,000) credits: its row stays under ~30 KB, far below the
//             2 MB row limit.
//   calls     idempotency keys (call-log.ts): the last KEEP_CALLS lease requestIds and
//             reportIds per agent with their answers, one row written per call; cleared
//             when the run completes. Older retries are still safe: every seq settles once.
//   slots     rate mode and trace replay: intended send times of credits returned while
//             running (with a replay's item), reused before new slots so the schedule
//             keeps its shape.
//   meta replay:N   trace replay: the trace's send offsets, REPLAY_CHUNK a row, written once
//             at creation; meta replayCursor: the next trace item to hand out.
//
// Agent and lease rows are few (≤ MAX_AGENTS; leases ≤ what agents may hold) and read on
// every call, so they are cached (here and in lease-table.ts) and written through; the
// coordinator drops the caches when a transaction fails. `rowsWritten` sums what every
// statement wrote (counting-sql.ts: what Cloudflare bills), for tests and benchmarks.

export type { AgentRow, CreditRow, LeaseRow } from "./rows";
import { CALLS, CallLog } from "./call-log";
import { CountingSql } from "./counting-sql";
import { LEASES, LeaseTable } from "./lease-table";
import type { AgentRow } from "./rows";
import { agentOf, leasesOfCredits } from "./rows";

/** Trace offsets per meta row: 20,000 numbers of at most ~20 characters is under 0.5 MB. */
const REPLAY_CHUNK = 20_000;

/** Rate mode and trace replay: an intended send time (ms after the measured start) not yet granted, and a replay's item. */
export interface Slot {
  at: number;
  item: number | null;
}

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
  /** A trace replay's send offsets (meta replay:N); null: not loaded. Never changes once written. */
  private replay: number[] | null = null;
  private readonly db: CountingSql;
  /** Outstanding credits, as lease rows. */
  readonly leases: LeaseTable;
  /** Idempotency keys: each call's answer, for its retries. */
  readonly calls: CallLog;

  constructor(private readonly sql: SqlStorage) {
    this.db = new CountingSql(sql);
    this.leases = new LeaseTable(this.db);
    this.calls = new CallLog(this.db);
  }

  /** Rows written by this instance so far; `noteWrites` adds writes made outside SQL (setAlarm is billed as one). */
  get rowsWritten(): number {
    return this.db.written;
  }

  noteWrites(n: number): void {
    this.db.written += n;
  }

  /**
   * Whether this object holds a run. Checked before any table is touched, so a request
   * for an unknown (or wiped) run id never leaves an empty object behind.
   */
  exists(): boolean {
    return this.db.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").length > 0;
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
      this.db.exec("SELECT name, sql FROM sqlite_master WHERE type = 'table'").map((r) => [String(r.name), String(r.sql)]),
    );
    const oldCalls = tables.get("calls")?.includes(" n INTEGER") === true;
    // Slots gained the replayed item (trace replay); runs stored before it never replay.
    if (tables.has("slots") && !tables.get("slots")!.includes("item")) this.db.exec("ALTER TABLE slots ADD COLUMN item INTEGER");
    if (!tables.has("credits") && !oldCalls) return;
    if (tables.has("credits")) {
      this.db.exec(LEASES);
      this.leases.importLeases(leasesOfCredits(this.db.exec("SELECT seq, agent, at, warmup FROM credits ORDER BY seq")));
      this.db.exec("DROP TABLE credits");
    }
    if (oldCalls) this.calls.rebuildFromNumbered();
    this.invalidate();
  }

  /** Forgets cached rows: after a failed transaction (its writes were undone) or a wipe. */
  invalidate(): void {
    this.replay = null;
    this.agentList = null;
    this.agentIndex = new Map();
    this.joinLists = new Map();
    this.leases.invalidate();
  }

  getMeta<T>(k: string): T | null {
    const row = this.db.exec("SELECT v FROM meta WHERE k = ?", k)[0];
    return row ? (JSON.parse(String(row.v)) as T) : null;
  }

  putMeta(k: string, v: unknown): void {
    this.db.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, JSON.stringify(v));
  }

  // ── Agents (cached, written through) ───────────────────────────────────────

  private loadAgents(): AgentRow[] {
    if (this.agentList === null) {
      this.agentList = this.db.exec("SELECT * FROM agents ORDER BY ord").map(agentOf);
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
    this.db.exec(
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

  /** Deletes every outstanding credit, and the holders' counts of them. */
  deleteAllCredits(): void {
    this.leases.clear();
    this.db.exec("UPDATE agents SET outstanding = 0 WHERE outstanding <> 0");
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
    const rows = this.db.exec("SELECT rowid, at, item FROM slots WHERE at <= ? ORDER BY at LIMIT ?", upTo, limit);
    if (rows.length > 0)
      this.db.exec("DELETE FROM slots WHERE rowid IN (SELECT value FROM json_each(?))", JSON.stringify(rows.map((r) => r.rowid)));
    return rows.map((r) => ({ at: Number(r.at), item: r.item === null ? null : Number(r.item) }));
  }

  putSlot(slot: Slot): void {
    this.db.exec("INSERT INTO slots (at, item) VALUES (?, ?)", slot.at, slot.item);
  }
}
