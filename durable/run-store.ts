// SQLite layout of one RunCoordinator. Everything needed to continue after eviction,
// redeploy or a crash lives here; nothing else is authoritative.
//
//   meta      one row per key: run (static config), state (RunState), spec, auth, metrics,
//             schedule (rate cursor). Small JSON documents of bounded size.
//   agents    one row per agent that joined (≤ MAX_AGENTS): lease expiry, share, counters.
//   credits   one row per OUTSTANDING credit: seq, the holder's ordinal, intended time, warmup.
//             A settled credit's row is deleted, so the table is bounded by what is in
//             flight, not by the run's size. A lease's credits are consecutive seqs, so no
//             lease id is stored: the idempotency record of a lease names its range.
//   calls     idempotency keys: the last KEEP_CALLS lease requestIds and reportIds per
//             agent with their answers; cleared when the run completes (nothing can be
//             leased or settled after that). Older retries are still safe: every seq
//             settles once.
//   slots     rate mode: intended send times of credits returned while running, reused
//             before new slots so the schedule keeps its shape.
//
// Agent rows are few (≤ MAX_AGENTS) and read on every call, so they are cached here and
// written through; the coordinator drops the cache when a transaction fails.

// An agent has one coordinator call under way at a time and retries it at once, so a
// short window suffices; a longer one would only make storage grow with the run.
export const KEEP_CALLS = 4;
/** The `calls` rows of joins are kept under this ordinal (no agent has it). */
const JOINS = -1;
type CallKind = "lease" | "report" | "join";
/** Durable Object SQL binds at most 100 parameters per statement. */
const MAX_PARAMS = 100;

export type { AgentRow, CreditRow } from "./rows";
import type { AgentRow, CreditRow } from "./rows";

type Row = Record<string, SqlStorageValue>;

const toAgent = (r: Row): AgentRow => ({
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

const toCredit = (r: Row): CreditRow => ({
  seq: Number(r.seq),
  agent: Number(r.agent),
  at: r.at === null ? null : Number(r.at),
  warmup: Number(r.warmup) === 1,
});

/** Sorted distinct integers as runs of consecutive values [first, last]. */
function runsOf(seqs: readonly number[]): Array<[number, number]> {
  const sorted = [...seqs].sort((a, b) => a - b);
  const runs: Array<[number, number]> = [];
  for (const x of sorted) {
    const last = runs[runs.length - 1];
    if (last && x === last[1] + 1) last[1] = x;
    else if (!last || x > last[1]) runs.push([x, x]);
  }
  return runs;
}

export class RunStore {
  /** Agent rows by ordinal (ordinals are 0, 1, 2… in joining order); null: not loaded. */
  private agentList: AgentRow[] | null = null;
  private coloList: Array<string | null> | null = null;
  private agentIndex = new Map<string, AgentRow>();

  constructor(private readonly sql: SqlStorage) {}

  /**
   * Whether this object holds a run. Checked before any table is touched, so a request
   * for an unknown (or wiped) run id never leaves an empty object behind.
   */
  exists(): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").toArray().length > 0;
  }

  /** Creates the tables; only when a run is created. */
  init(): void {
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS agents (
        id TEXT PRIMARY KEY, ord INTEGER NOT NULL, name TEXT, region TEXT,
        joined_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        alive INTEGER NOT NULL, outstanding INTEGER NOT NULL, inflight INTEGER NOT NULL,
        share_sent INTEGER NOT NULL, share_acked INTEGER NOT NULL, calls INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS credits (seq INTEGER PRIMARY KEY, agent INTEGER NOT NULL, at REAL, warmup INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS calls (
        agent INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, answer TEXT NOT NULL,
        PRIMARY KEY (agent, kind, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS slots (at REAL NOT NULL);
    `);
  }

  /** Forgets cached rows: after a failed transaction (its writes were undone) or a wipe. */
  invalidate(): void {
    this.agentList = null;
    this.agentIndex = new Map();
    this.coloList = null;
  }

  getMeta<T>(k: string): T | null {
    const row = this.sql.exec("SELECT v FROM meta WHERE k = ?", k).toArray()[0];
    return row ? (JSON.parse(String(row.v)) as T) : null;
  }

  putMeta(k: string, v: unknown): void {
    this.sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, JSON.stringify(v));
  }

  // ── Agents (cached, written through) ───────────────────────────────────────

  private loadAgents(): AgentRow[] {
    if (this.agentList === null) {
      this.agentList = this.sql.exec("SELECT * FROM agents ORDER BY ord").toArray().map(toAgent);
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
    this.sql.exec(
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

  // ── Credits ────────────────────────────────────────────────────────────────

  /** The outstanding credits among `count` consecutive seqs from `first` held by agent `ord`. */
  creditsInRange(ord: number, first: number, count: number): CreditRow[] {
    return this.sql
      .exec("SELECT * FROM credits WHERE seq >= ? AND seq < ? AND agent = ? ORDER BY seq", first, first + count, ord)
      .toArray()
      .map(toCredit);
  }

  /**
   * Grants consecutive seqs from `first` to agent `ord` in one statement: one per entry of
   * `ats` (intended times, null in concurrency mode); the first `warmup` are warmup credits.
   */
  insertCredits(ord: number, first: number, ats: ReadonlyArray<number | null>, warmup: number): void {
    if (ats.length === 0) return;
    this.sql.exec(
      "INSERT INTO credits (seq, agent, at, warmup) SELECT ?1 + key, ?2, value, key < ?3 FROM json_each(?4)",
      first,
      ord,
      warmup,
      JSON.stringify(ats),
    );
  }

  /**
   * Deletes the named credits and answers the rows that existed. Callers run inside a
   * transaction and throw to refuse a report, which undoes the deletes. Consecutive seqs
   * (the usual report: most of a lease) are deleted as ranges, a few statements per report.
   */
  takeCredits(seqs: readonly number[]): CreditRow[] {
    const rows: CreditRow[] = [];
    const runs = runsOf(seqs);
    const perStatement = Math.floor(MAX_PARAMS / 2);
    for (let i = 0; i < runs.length; i += perStatement) {
      const chunk = runs.slice(i, i + perStatement);
      const where = chunk.map(([a, b]) => (a === b ? "seq = ?" : "seq BETWEEN ? AND ?")).join(" OR ");
      const params = chunk.flatMap(([a, b]) => (a === b ? [a] : [a, b]));
      for (const r of this.sql.exec(`DELETE FROM credits WHERE ${where} RETURNING *`, ...params)) rows.push(toCredit(r));
    }
    return rows;
  }

  deleteCredit(seq: number): void {
    this.sql.exec("DELETE FROM credits WHERE seq = ?", seq);
  }

  /** Deletes every credit of agent `ord` and answers them. */
  takeCreditsOfAgent(ord: number): CreditRow[] {
    return this.sql
      .exec("DELETE FROM credits WHERE agent = ? RETURNING *", ord)
      .toArray()
      .map(toCredit)
      .sort((a, b) => a.seq - b.seq);
  }

  /** Measured credits outstanding per holder (before a drain timeout or force stop abandons them all). */
  measuredOutstandingByHolder(): Array<{ ord: number; n: number }> {
    return this.sql
      .exec("SELECT agent, COUNT(*) AS n FROM credits WHERE warmup = 0 GROUP BY agent")
      .toArray()
      .map((r) => ({ ord: Number(r.agent), n: Number(r.n) }));
  }

  /** The Cloudflare colo each agent said it runs in, by ordinal (meta "colos"; set at join, never changed). */
  colos(): Array<string | null> {
    this.coloList ??= this.getMeta<Array<string | null>>("colos") ?? [];
    return this.coloList;
  }

  setColo(ord: number, colo: string | null): void {
    const list = [...this.colos()];
    while (list.length <= ord) list.push(null);
    list[ord] = colo;
    this.putMeta("colos", list);
    this.coloList = list;
  }

  deleteAllCredits(): void {
    this.sql.exec("DELETE FROM credits");
    this.sql.exec("UPDATE agents SET outstanding = 0");
    if (this.agentList) for (const a of this.agentList) this.putCached({ ...a, outstanding: 0 });
  }

  private putCached(a: AgentRow): void {
    this.agentList![a.ord] = a;
    this.agentIndex.set(a.id, a);
  }

  // ── Idempotency ────────────────────────────────────────────────────────────

  call(ord: number, kind: CallKind, key: string): string | null {
    const row = this.sql.exec("SELECT answer FROM calls WHERE agent = ? AND kind = ? AND key = ?", ord, kind, key).toArray()[0];
    return row ? String(row.answer) : null;
  }

  /** Records an answered call and forgets the agent's calls older than the last KEEP_CALLS. */
  recordCall(ord: number, kind: CallKind, key: string, n: number, answer: string): void {
    this.sql.exec("INSERT OR REPLACE INTO calls (agent, kind, key, n, answer) VALUES (?, ?, ?, ?, ?)", ord, kind, key, n, answer);
    if (n > KEEP_CALLS) this.sql.exec("DELETE FROM calls WHERE agent = ? AND n <= ?", ord, n - KEEP_CALLS);
  }

  /** Joins by requestId, under the pseudo-ordinal JOINS: all kept (at most MAX_AGENTS), since many agents may join at once. */
  joinedBy(requestId: string): string | null {
    return this.call(JOINS, "join", requestId);
  }

  recordJoin(requestId: string, agentId: string): void {
    this.sql.exec("INSERT OR REPLACE INTO calls (agent, kind, key, n, answer) VALUES (?, 'join', ?, 0, ?)", JOINS, requestId, agentId);
  }

  /** Once the run is complete no call can change anything: its answers are not kept. */
  clearCalls(): void {
    this.sql.exec("DELETE FROM calls");
  }

  // ── Rate-mode slots ────────────────────────────────────────────────────────

  takeSlots(limit: number, upTo: number): number[] {
    const rows = this.sql.exec("SELECT rowid, at FROM slots WHERE at <= ? ORDER BY at LIMIT ?", upTo, limit).toArray();
    for (const r of rows) this.sql.exec("DELETE FROM slots WHERE rowid = ?", r.rowid);
    return rows.map((r) => Number(r.at));
  }

  putSlot(at: number): void {
    this.sql.exec("INSERT INTO slots (at) VALUES (?)", at);
  }
}
