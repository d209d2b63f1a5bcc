// Fleet: the one object that knows which runs are active, so an operator can drain the
// whole service before a redeploy (README "The API", /v1/admin/drain; a run's three phases
// applied to the service): refuse new runs → wait while active runs finish → drained.
//
// Stored (SQLite): the drain flag and one row per active run. A run is added before its
// coordinator is created and removed when the coordinator reports completion (it retries
// from its alarm until that succeeds), so the table never misses a live run.
// In memory: nothing. No alarm: the Fleet only reacts to calls.

import { DurableObject } from "cloudflare:workers";
import { StatusError, asResult } from "../contract/errors";
import type { RpcResult } from "../contract/errors";

export type ServicePhase = "accepting" | "draining" | "drained";

export interface FleetView {
  phase: ServicePhase;
  activeRuns: number;
}

export interface ActiveRun {
  id: string;
  createdAt: string;
}

export class Fleet extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS flags (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
    `);
  }

  private draining(): boolean {
    return Number(this.sql.exec("SELECT COALESCE(MAX(v), 0) AS v FROM flags WHERE k = 'draining'").one().v) === 1;
  }

  private view(): FleetView {
    const activeRuns = Number(this.sql.exec("SELECT COUNT(*) AS n FROM runs").one().n);
    const phase: ServicePhase = !this.draining() ? "accepting" : activeRuns > 0 ? "draining" : "drained";
    return { phase, activeRuns };
  }

  /** Registers a run about to be created; refused while the service drains. */
  async admit(id: string, createdAt: number): Promise<RpcResult<FleetView>> {
    return asResult(async () => {
      if (this.draining()) {
        throw new StatusError(503, "service_draining", "The service is draining for maintenance: no new runs are accepted.");
      }
      this.sql.exec("INSERT OR IGNORE INTO runs (id, created_at) VALUES (?, ?)", id, createdAt);
      return this.view();
    });
  }

  /** A run completed (or was never created). Idempotent. */
  async ended(id: string): Promise<FleetView> {
    this.sql.exec("DELETE FROM runs WHERE id = ?", id);
    return this.view();
  }

  async list(): Promise<{ runs: ActiveRun[] } & FleetView> {
    const runs = this.sql
      .exec("SELECT id, created_at FROM runs ORDER BY created_at, id")
      .toArray()
      .map((r) => ({ id: String(r.id), createdAt: new Date(Number(r.created_at)).toISOString() }));
    return { runs, ...this.view() };
  }

  async status(): Promise<FleetView> {
    return this.view();
  }

  async drain(on: boolean): Promise<FleetView> {
    this.sql.exec("INSERT INTO flags (k, v) VALUES ('draining', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", on ? 1 : 0);
    return this.view();
  }
}
