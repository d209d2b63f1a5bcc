// Request timeouts without a timer per request. Arming and clearing a timer for every
// request was about 9% of an edge agent's CPU on a fast target (workerd's setTimeout and
// clearTimeout; docs/BENCHMARKS.md). One engine's requests share one timeout, so their
// deadlines come in the order they were sent: one timer, armed for the earliest deadline,
// serves them all and is re-armed only when it fires (about once per timeout) or when a
// deadline earlier than the armed one arrives. Deadlines fire exactly when due, as
// separate timers would. Nothing is left armed once no request is pending, so no timer
// outlives the requests of the invocation that sent them.

type Timer = ReturnType<typeof setTimeout>;

interface Entry {
  at: number;
  fire: () => void;
  cancel: (() => void) | undefined;
}

export class Deadlines {
  private readonly pending = new Set<Entry>();
  private timer: Timer | null = null;
  private armedFor = Number.POSITIVE_INFINITY;
  private wasCancelled = false;

  /** `clock`: epoch-like milliseconds that setTimeout's delays are measured against. */
  private readonly clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.clock = clock;
  }

  /**
   * Calls `fire` in `ms` unless the returned function is called first (it may be called
   * more than once); `cancel` is called instead if cancelAll() comes first (the engine's
   * requests cancelled together, without a listener per request on one signal).
   */
  add(ms: number, fire: () => void, cancel?: () => void): () => void {
    const e: Entry = { at: this.clock() + ms, fire, cancel };
    this.pending.add(e);
    if (e.at < this.armedFor) this.arm(e.at);
    if (this.wasCancelled) cancel?.();
    return () => {
      if (this.pending.delete(e) && this.pending.size === 0) this.disarm();
    };
  }

  /** Cancels every pending request, and every one added from now on. */
  cancelAll(): void {
    this.wasCancelled = true;
    for (const e of [...this.pending]) e.cancel?.();
  }

  /** Whether cancelAll() was called: a request that failed since was cancelled, not broken. */
  get cancelled(): boolean {
    return this.wasCancelled;
  }

  /** Requests waiting on a deadline (for tests and gauges). */
  get size(): number {
    return this.pending.size;
  }

  private arm(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(() => this.due(), Math.max(0, at - this.clock()));
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private due(): void {
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = this.clock();
    let next = Number.POSITIVE_INFINITY;
    const fired: Entry[] = [];
    for (const e of this.pending) {
      if (e.at <= now) fired.push(e);
      else next = Math.min(next, e.at);
    }
    for (const e of fired) this.pending.delete(e);
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
    for (const e of fired) e.fire();
  }
}
