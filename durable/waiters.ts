// Long-poll waiters of one Durable Object: calls that wait for a change (a phase
// change, completion) are woken the moment it happens, or when their time is up.
// In memory only: a waiter dies with its connection, so there is nothing to store.

export class Waiters {
  private readonly waiting = new Set<() => void>();

  /** Wakes every waiter (they re-check their condition). */
  wake(): void {
    for (const w of this.waiting) w();
    this.waiting.clear();
  }

  /**
   * Resolves when `finished()` holds or `ms` has passed. `onWake` runs after every wake
   * (e.g. to apply deadlines that passed meanwhile) before the condition is checked.
   */
  async until(ms: number, finished: () => boolean, onWake: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + ms;
    while (!finished() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiting.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, deadline - Date.now()));
        this.waiting.add(done);
      });
      await onWake();
    }
  }
}
