// Fleet: the one object that knows which runs are active, so an operator can drain the
// whole service before a redeploy (README "The API", /v1/admin/drain; a run's three phases
// applied to the service): refuse new runs → wait while active runs finish, or until the
// drain's deadline force-stops them → drained.
//
// Stored (SQLite): `flags` holds whether the service drains and the drain's deadline (ms
// on this object's clock; absent: wait for ever); `runs` holds one row per active run. A
// run is added before its coordinator is created and removed when the coordinator reports
// completion (it retries from its alarm until that succeeds), when a stop at the deadline
// answers that the run is complete, or when its coordinator answers 404 (it was wiped, or
// never created), so the table never misses a live run and never keeps a dead one.
// In memory: when each run whose stop failed may be tried again. Lost on eviction, which
// only means those runs are tried again at once.
// The alarm: set to the deadline while a drain with a deadline is under way. It may fire
// early or twice: before the deadline it sets itself again for the deadline; after it, it
// force-stops the runs still listed (at most STOP_BATCH an invocation, each a
// subrequest) and sets itself again for whatever is left (more runs, failed stops).
// Stopping a complete or already stopped run changes nothing, so repeating is harmless.
// Resuming the service deletes the deadline and the alarm.

import { DurableObject } from "cloudflare:workers";
import { StatusError, asResult } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import type { Snapshot } from "./views";

export type ServicePhase = "accepting" | "draining" | "drained";

/** At most this many run ids in a drain view; `activeRuns` has the total. */
export const MAX_LISTED_IDS = 100;
/** Runs force-stopped per alarm invocation: each stop is a subrequest. */
const STOP_BATCH = 50;
/** Stops sent at once. */
const STOP_PARALLEL = 10;
/** A stop that failed (not a refusal that settles the run) is tried again this much later. */
const RETRY_MS = 5_000;
/**
 * A row is written just before its coordinator is created, so for a moment a live run's
 * coordinator answers 404. A 404 means the run is gone only once its row is older than this.
 */
export const ADMIT_GRACE_MS = 60_000;

export interface FleetSummary {
  phase: ServicePhase;
  activeRuns: number;
}

/** GET /v1/admin/drain. */
export interface FleetView extends FleetSummary {
  /** When still-active runs are force-stopped (ISO), or null: the drain waits for ever. */
  deadline: string | null;
  /** The oldest MAX_LISTED_IDS active runs. */
  activeRunIds: string[];
}

export interface ActiveRun {
  id: string;
  createdAt: string;
}

/** A position in the (created_at, id) order of the active runs. */
export interface RunKey {
  createdAt: number;
  id: string;
}

export interface RunPage extends FleetSummary {
  runs: ActiveRun[];
  /** The last run of this page when more follow, else null. */
  next: RunKey | null;
}

interface Row {
  id: string;
  createdAt: number;
}

export class Fleet extends DurableObject<Env> {
  /** The clock the deadline is measured on; tests replace it to drive time. */
  now: () => number = () => Date.now();

  private readonly sql: SqlStorage;
  /** Run id → when its failed stop may be tried again. */
  private readonly retryAt = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS flags (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
    `);
  }

  // ── RPC ────────────────────────────────────────────────────────────────────

  /** Registers a run about to be created; refused while the service drains. */
  async admit(id: string, createdAt: number): Promise<RpcResult<FleetSummary>> {
    return asResult(async () => {
      if (this.draining()) {
        throw new StatusError(503, "service_draining", "The service is draining for maintenance: no new runs are accepted.");
      }
      this.sql.exec("INSERT OR IGNORE INTO runs (id, created_at) VALUES (?, ?)", id, createdAt);
      return this.summary();
    });
  }

  /** A run completed (or was never created). Idempotent. */
  async ended(id: string): Promise<FleetSummary> {
    this.forget(id);
    return this.summary();
  }

  /** One page of the active runs in (created_at, id) order, after `after` (exclusive). */
  async list(limit: number, after: RunKey | null = null): Promise<RunPage> {
    const rows = (
      after === null
        ? this.sql.exec("SELECT id, created_at FROM runs ORDER BY created_at, id LIMIT ?", limit + 1)
        : this.sql.exec(
            "SELECT id, created_at FROM runs WHERE created_at > ?1 OR (created_at = ?1 AND id > ?2) ORDER BY created_at, id LIMIT ?3",
            after.createdAt,
            after.id,
            limit + 1,
          )
    )
      .toArray()
      .map(toRow);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      runs: page.map((r) => ({ id: r.id, createdAt: new Date(r.createdAt).toISOString() })),
      next: rows.length > limit && last ? last : null,
      ...this.summary(),
    };
  }

  async status(): Promise<FleetView> {
    return this.view();
  }

  /**
   * Begins the drain (again). With `timeoutSeconds`, runs still active that many seconds
   * from now are force-stopped; without, an earlier deadline stays as it was and
   * otherwise the drain waits for ever.
   */
  async drain(timeoutSeconds: number | null = null): Promise<FleetView> {
    this.setFlag("draining", 1);
    if (timeoutSeconds !== null) {
      const deadline = this.now() + Math.round(timeoutSeconds * 1000);
      this.setFlag("deadline", deadline);
      await this.ctx.storage.setAlarm(deadline);
    }
    return this.view();
  }

  /** Accepts new runs again; the deadline and its alarm are gone. */
  async resume(): Promise<FleetView> {
    this.setFlag("draining", 0);
    this.sql.exec("DELETE FROM flags WHERE k = 'deadline'");
    this.retryAt.clear();
    await this.ctx.storage.deleteAlarm();
    return this.view();
  }

  // ── Alarm ──────────────────────────────────────────────────────────────────

  override async alarm(): Promise<void> {
    const deadline = this.deadline();
    if (deadline === null) return; // resumed, or a drain without a deadline
    const now = this.now();
    const next = now < deadline ? deadline : await this.stopActiveRuns(now);
    // Not if the operator resumed the service while the stops were under way.
    if (next !== null && this.deadline() !== null) await this.ctx.storage.setAlarm(next);
  }

  // ── Internals ──────────────────────────────────────────────────────────────

  private flag(k: string): number | null {
    const row = this.sql.exec("SELECT v FROM flags WHERE k = ?", k).toArray()[0];
    return row ? Number(row.v) : null;
  }

  private setFlag(k: string, v: number): void {
    this.sql.exec("INSERT INTO flags (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, v);
  }

  private draining(): boolean {
    return this.flag("draining") === 1;
  }

  /** The deadline of the drain under way, if it has one. */
  private deadline(): number | null {
    return this.draining() ? this.flag("deadline") : null;
  }

  private forget(id: string): void {
    this.sql.exec("DELETE FROM runs WHERE id = ?", id);
    this.retryAt.delete(id);
  }

  private summary(): FleetSummary {
    const activeRuns = Number(this.sql.exec("SELECT COUNT(*) AS n FROM runs").one().n);
    const phase: ServicePhase = !this.draining() ? "accepting" : activeRuns > 0 ? "draining" : "drained";
    return { phase, activeRuns };
  }

  private view(): FleetView {
    const { phase, activeRuns } = this.summary();
    const deadline = this.deadline();
    const activeRunIds = this.sql
      .exec("SELECT id FROM runs ORDER BY created_at, id LIMIT ?", MAX_LISTED_IDS)
      .toArray()
      .map((r) => String(r.id));
    return { phase, activeRuns, deadline: deadline === null ? null : new Date(deadline).toISOString(), activeRunIds };
  }

  /** Force-stops the runs that are due; returns when the alarm should fire again, or null. */
  private async stopActiveRuns(now: number): Promise<number | null> {
    const rows = this.sql.exec("SELECT id, created_at FROM runs ORDER BY created_at, id").toArray().map(toRow);
    const due = rows.filter((r) => (this.retryAt.get(r.id) ?? 0) <= now);
    const batch = due.slice(0, STOP_BATCH);
    const later: number[] = due.length > batch.length ? [now] : [];
    for (let i = 0; i < batch.length; i += STOP_PARALLEL) {
      const answers = await Promise.all(batch.slice(i, i + STOP_PARALLEL).map((r) => this.stopRun(r, now)));
      for (const at of answers) if (at !== null) later.push(at);
    }
    for (const r of rows) {
      const at = this.retryAt.get(r.id);
      if (at !== undefined && at > now) later.push(at);
    }
    return later.length > 0 ? Math.min(...later) : null;
  }

  /** Force-stops one run as `service_drain`; returns when to try it again, or null when it is settled. */
  private async stopRun(row: Row, now: number): Promise<number | null> {
    // The operator may have resumed the service while earlier stops were under way.
    if (this.deadline() === null) return null;
    const ns = this.env.RUN_COORDINATOR;
    let coordinator;
    try {
      coordinator = ns.get(ns.idFromString(row.id));
    } catch {
      // Not an id a coordinator could have (rows come from newUniqueId): nothing to wait for.
      this.forget(row.id);
      return null;
    }
    let answer: RpcResult<Snapshot>;
    try {
      answer = await coordinator.stop({ role: "api" }, "force", "service_drain");
    } catch (e) {
      return this.retry(row, now, e instanceof Error ? e.message : String(e));
    }
    if (answer.ok) {
      // A force stop completes the run at once; its coordinator also reports that (ended).
      if (answer.value.phase === "complete") {
        this.forget(row.id);
        return null;
      }
      return this.retry(row, now, `still ${answer.value.phase} after a force stop`);
    }
    if (answer.status === 404) {
      if (now - row.createdAt < ADMIT_GRACE_MS) {
        this.retryAt.set(row.id, row.createdAt + ADMIT_GRACE_MS);
        return row.createdAt + ADMIT_GRACE_MS;
      }
      this.forget(row.id);
      return null;
    }
    return this.retry(row, now, `${answer.status} ${answer.code}: ${answer.message}`);
  }

  private retry(row: Row, now: number, why: string): number {
    console.error(`Fleet: service drain could not stop run ${row.id}, retrying: ${why}`);
    const at = now + RETRY_MS;
    this.retryAt.set(row.id, at);
    return at;
  }
}

function toRow(r: Record<string, SqlStorageValue>): Row {
  return { id: String(r.id), createdAt: Number(r.created_at) };
}
