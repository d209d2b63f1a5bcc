// How the agent loop sleeps: until something it started finishes (wake), or until the
// earliest moment it asked to be woken (arm). Missed wakes are kept, so an event that
// lands while the loop is busy is never lost. At most a few timers are pending at once:
// a later moment is not armed while an earlier one is, the loop re-arms after each.

export class Waker {
  private waiter: (() => void) | null = null;
  private woken = false;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(now: () => number, sleep: (ms: number) => Promise<void>) {
    this.now = now;
    this.sleep = sleep;
  }

  /** Wakes the loop at `at` (on the `now` clock) at the latest. */
  arm(at: number): void {
    if (!(at < this.timerAt)) return;
    this.timerAt = at;
    void this.sleep(Math.max(0, at - this.now())).then(() => {
      if (this.timerAt === at) this.timerAt = Number.POSITIVE_INFINITY;
      this.wake();
    });
  }

  wake(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w();
    } else this.woken = true;
  }

  next(): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
    });
  }
}
