// The Experiment object's storage: one SQLite table of JSON rows (`meta`: id, plan,
// secrets, state). The table is created with the experiment, so after the wipe
// (deleteAll drops it) the object finds no experiment rather than an empty one.

import type { ExperimentPlan } from "../contract/experiment";
import type { ExperimentState } from "./experiment-machine";

/** The experiment's token hashes (each level's run gets them as its own) and the origin its levels' edge agents ask for their colo. */
export interface Secrets {
  read: string;
  agent: string;
  origin: string | null;
}

export interface Stored {
  id: string;
  plan: ExperimentPlan;
  state: ExperimentState;
}

export class ExperimentStore {
  constructor(private readonly sql: SqlStorage) {}

  exists(): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").toArray().length > 0;
  }

  /** Everything but the secrets, or null when there is no experiment. */
  load(): Stored | null {
    if (!this.exists()) return null;
    const id = this.get<string>("id");
    const plan = this.get<ExperimentPlan>("plan");
    const state = this.get<ExperimentState>("state");
    return id !== null && plan !== null && state !== null ? { id, plan, state } : null;
  }

  /** The first write: the caller runs it in a transaction. */
  create(id: string, plan: ExperimentPlan, secrets: Secrets, state: ExperimentState): void {
    this.sql.exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    this.put("id", id);
    this.put("plan", plan);
    this.put("secrets", secrets);
    this.put("state", state);
  }

  secrets(): Secrets {
    const s = this.get<Secrets>("secrets");
    if (!s) throw new Error("experiment storage has no secrets row");
    return s;
  }

  putState(state: ExperimentState): void {
    this.put("state", state);
  }

  private get<T>(k: string): T | null {
    const row = this.sql.exec("SELECT v FROM meta WHERE k = ?", k).toArray()[0];
    return row ? (JSON.parse(String(row.v)) as T) : null;
  }

  private put(k: string, v: unknown): void {
    this.sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, JSON.stringify(v));
  }
}
