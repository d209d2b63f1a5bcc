// The coordinator's idempotency keys (the `calls` table, run-store.ts): the last
// KEEP_CALLS lease requestIds and reportIds per agent with their answers, in KEEP_CALLS
// slots per agent overwritten in turn (one row written per call, not an insert and a
// delete), and every join's requestId. A retried call finds its answer here and gets it
// again instead of being applied twice.

import type { CountingSql } from "./counting-sql";

// An agent has one coordinator call under way at a time and retries it at once, so a
// short window suffices; a longer one would only make storage grow with the run.
export const KEEP_CALLS = 4;
/** The `calls` rows of joins are kept under this ordinal (no agent has it), one slot per agent. */
const JOINS = -1;
export type CallKind = "lease" | "report" | "join";

export const CALLS = `CREATE TABLE IF NOT EXISTS calls (
  agent INTEGER NOT NULL, slot INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, answer TEXT NOT NULL,
  PRIMARY KEY (agent, slot)) WITHOUT ROWID`;

export class CallLog {
  constructor(private readonly db: CountingSql) {}

  /** The answer kept for agent `ord`'s call of this kind and key; null: not (or no longer) kept. */
  answer(ord: number, kind: CallKind, key: string): string | null {
    const row = this.db.exec("SELECT answer FROM calls WHERE agent = ? AND kind = ? AND key = ?", ord, kind, key)[0];
    return row ? String(row.answer) : null;
  }

  /** Records the agent's `n`th answered call in slot n mod KEEP_CALLS, over the call KEEP_CALLS before it. */
  record(ord: number, kind: CallKind, key: string, n: number, answer: string): void {
    this.put(ord, n % KEEP_CALLS, kind, key, answer);
  }

  /** Joins by requestId, under the pseudo-ordinal JOINS: all kept (at most MAX_AGENTS), since many agents may join at once. */
  joinedBy(requestId: string): string | null {
    return this.answer(JOINS, "join", requestId);
  }

  /** A join's record, in the slot of the agent it created (`ord`). */
  recordJoin(requestId: string, agentId: string, ord: number): void {
    this.put(JOINS, ord, "join", requestId, agentId);
  }

  /** Once the run is complete no call can change anything: its answers are not kept. */
  clear(): void {
    this.db.exec("DELETE FROM calls");
  }

  /**
   * A run stored by an earlier version kept calls keyed by a running number `n`: the
   * table is made again in slots, each old call in the slot it would have now. Only for
   * such a table (RunStore.upgrade checks for its `n` column first).
   */
  rebuildFromNumbered(): void {
    const old = this.db.exec("SELECT agent, kind, key, n, answer FROM calls ORDER BY agent, n");
    this.db.exec("DROP TABLE calls");
    this.db.exec(CALLS);
    let joins = 0;
    for (const r of old) {
      const slot = Number(r.agent) === JOINS ? joins++ : Number(r.n) % KEEP_CALLS;
      this.put(Number(r.agent), slot, r.kind as CallKind, String(r.key), String(r.answer));
    }
  }

  private put(ord: number, slot: number, kind: CallKind, key: string, answer: string): void {
    this.db.exec(
      `INSERT INTO calls (agent, slot, kind, key, answer) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(agent, slot) DO UPDATE SET kind = excluded.kind, key = excluded.key, answer = excluded.answer`,
      ord,
      slot,
      kind,
      key,
      answer,
    );
  }
}
