// SQLite layout of one RunCoordinator. Everything needed to continue after eviction,
// redeploy or a crash lives here; nothing else is authoritative.
//
//   meta      one row per key: run (static config), state (RunState), spec, auth, metrics,
//             schedule (rate cursor). Small JSON documents of bounded size.
//   agents    one row per agent that joined (≤ MAX_AGENTS): lease expiry, share, counters.
//   credits   one row per OUTSTANDING credit; a settled credit's row is deleted, so the
//             table is bounded by what is in flight, not by the run's size.
//   calls     idempotency keys: the last KEEP_CALLS lease requestIds and reportIds per
//             agent with their answers. Older retries are still safe: every seq settles once.
//   slots     rate mode: intended send times of credits returned while running, reused
//             before new slots so the schedule keeps its shape.

// An agent has one coordinator call under way at a time and retries it at once, so a
// short window suffices; a longer one would only make storage grow with the run.
export const KEEP_CALLS = 8;
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
  agentId: String(r.agent_id),
  leaseId: String(r.lease_id),
  at: r.at === null ? null : Number(r.at),
  warmup: Number(r.warmup) === 1,
});

export class RunStore {
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
      CREATE TABLE IF NOT EXISTS credits (
        seq INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, lease_id TEXT NOT NULL, at REAL, warmup INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS credits_by_agent ON credits(agent_id);
      CREATE INDEX IF NOT EXISTS credits_by_lease ON credits(lease_id);
      CREATE TABLE IF NOT EXISTS calls (
        agent_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, answer TEXT NOT NULL,
        PRIMARY KEY (agent_id, kind, key));
      CREATE TABLE IF NOT EXISTS slots (at REAL NOT NULL);
    `);
  }

  getMeta<T>(k: string): T | null {
    const row = this.sql.exec("SELECT v FROM meta WHERE k = ?", k).toArray()[0];
    return row ? (JSON.parse(String(row.v)) as T) : null;
  }

  putMeta(k: string, v: unknown): void {
    this.sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, JSON.stringify(v));
  }

  agents(): AgentRow[] {
    return this.sql.exec("SELECT * FROM agents ORDER BY ord").toArray().map(toAgent);
  }

  agent(id: string): AgentRow | null {
    const row = this.sql.exec("SELECT * FROM agents WHERE id = ?", id).toArray()[0];
    return row ? toAgent(row) : null;
  }

  agentCount(): number {
    return Number(this.sql.exec("SELECT COUNT(*) AS n FROM agents").one().n);
  }

  putAgent(a: AgentRow): void {
    this.sql.exec(
      `INSERT INTO agents (id, ord, name, region, joined_at, last_seen, expires_at, alive, outstanding, inflight, share_sent, share_acked, calls)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen, expires_at = excluded.expires_at, alive = excluded.alive,
         outstanding = excluded.outstanding, inflight = excluded.inflight, share_sent = excluded.share_sent,
         share_acked = excluded.share_acked, calls = excluded.calls`,
      a.id, a.ord, a.name, a.region, a.joinedAt, a.lastSeen, a.expiresAt, a.alive ? 1 : 0,
      a.outstanding, a.inflight, a.shareSent, a.shareAcked, a.calls,
    );
  }

  creditsOfLease(leaseId: string): CreditRow[] {
    return this.sql.exec("SELECT * FROM credits WHERE lease_id = ? ORDER BY seq", leaseId).toArray().map(toCredit);
  }

  creditsOfAgent(agentId: string): CreditRow[] {
    return this.sql.exec("SELECT * FROM credits WHERE agent_id = ? ORDER BY seq", agentId).toArray().map(toCredit);
  }

  allCredits(): CreditRow[] {
    return this.sql.exec("SELECT * FROM credits ORDER BY seq").toArray().map(toCredit);
  }

  /** Inserts many credits in a few statements. */
  insertCredits(credits: readonly CreditRow[]): void {
    const perStatement = Math.floor(MAX_PARAMS / 5);
    for (let i = 0; i < credits.length; i += perStatement) {
      const chunk = credits.slice(i, i + perStatement);
      const params = chunk.flatMap((c) => [c.seq, c.agentId, c.leaseId, c.at, c.warmup ? 1 : 0]);
      this.sql.exec(`INSERT INTO credits (seq, agent_id, lease_id, at, warmup) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?)").join(", ")}`, ...params);
    }
  }

  /**
   * Deletes the named credits and answers the rows that existed. Callers run inside a
   * transaction and throw to refuse a report, which undoes the deletes.
   */
  takeCredits(seqs: readonly number[]): CreditRow[] {
    const rows: CreditRow[] = [];
    for (let i = 0; i < seqs.length; i += MAX_PARAMS) {
      const chunk = seqs.slice(i, i + MAX_PARAMS);
      const cursor = this.sql.exec(`DELETE FROM credits WHERE seq IN (${chunk.map(() => "?").join(", ")}) RETURNING *`, ...chunk);
      for (const r of cursor) rows.push(toCredit(r));
    }
    return rows;
  }

  deleteCredit(seq: number): void {
    this.sql.exec("DELETE FROM credits WHERE seq = ?", seq);
  }

  deleteAllCredits(): void {
    this.sql.exec("DELETE FROM credits");
    this.sql.exec("UPDATE agents SET outstanding = 0");
  }

  call(agentId: string, kind: "lease" | "report", key: string): string | null {
    const row = this.sql.exec("SELECT answer FROM calls WHERE agent_id = ? AND kind = ? AND key = ?", agentId, kind, key).toArray()[0];
    return row ? String(row.answer) : null;
  }

  /** Records an answered call and forgets the agent's calls older than the last KEEP_CALLS. */
  recordCall(agentId: string, kind: "lease" | "report", key: string, n: number, answer: string): void {
    this.sql.exec("INSERT OR REPLACE INTO calls (agent_id, kind, key, n, answer) VALUES (?, ?, ?, ?, ?)", agentId, kind, key, n, answer);
    this.sql.exec("DELETE FROM calls WHERE agent_id = ? AND n <= ?", agentId, n - KEEP_CALLS);
  }

  takeSlots(limit: number, upTo: number): number[] {
    const rows = this.sql.exec("SELECT rowid, at FROM slots WHERE at <= ? ORDER BY at LIMIT ?", upTo, limit).toArray();
    for (const r of rows) this.sql.exec("DELETE FROM slots WHERE rowid = ?", r.rowid);
    return rows.map((r) => Number(r.at));
  }

  putSlot(at: number): void {
    this.sql.exec("INSERT INTO slots (at) VALUES (?)", at);
  }
}
