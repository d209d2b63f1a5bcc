// RunCoordinator's one alarm (docs/ARCHITECTURE.md, "RunCoordinator"): set to the earliest
// deadline the run has. Each setAlarm is billed as one row written, so the alarm this
// instance last set is remembered and only a move earlier is written: an alarm earlier than
// needed is kept (it fires, finds nothing due, and sets the next one), and renewing a lease,
// which only moves deadlines later, costs no write.

import type { RunStore } from "./run-store";

export class RunAlarm {
  private readonly storage: DurableObjectStorage;
  private readonly store: RunStore;
  /** The alarm as last set by this instance (undefined: unknown, after a restart; null: none). */
  private at: number | null | undefined;

  constructor(storage: DurableObjectStorage, store: RunStore) {
    this.storage = storage;
    this.store = store;
  }

  /** A fired alarm is gone; the wipe's deleteAll took it too. */
  gone(): void {
    this.at = null;
  }

  /** Sets the alarm to `at` (unless it is already there). */
  async set(at: number): Promise<void> {
    if (at === this.at) return;
    await this.storage.setAlarm(at);
    this.store.noteWrites(1); // each setAlarm is billed as one row written
    this.at = at;
  }

  /**
   * Moves the alarm to `next`, the earliest deadline (null: none). A later `next` is
   * written only when `exact`: a completed run's alarm goes exactly to its next deadline
   * (the webhook's next attempt or the wipe; few writes remain by then), so it tells
   * when the run will be wiped.
   */
  async to(next: number | null, exact: boolean): Promise<void> {
    if (next === null) {
      if (this.at !== null) await this.storage.deleteAlarm();
      this.at = null;
    } else if (this.at === undefined || this.at === null || next < this.at || exact) {
      await this.set(next);
    }
  }
}
