// The mock's clock and wire: one timer for many streams (Ticker), when each token is due,
// and SSE bodies pulled token by token. Shared by every route of the mock.

import type { MockKnobs } from "./answer";

export interface Timing {
  start: number;
  ticker: Ticker;
}

/** Token i is due at start + ttftMs + i·itlMs, computed from the start each time, so slow timers never add up to drift. */
export function tokenTime(t: Timing, knobs: MockKnobs, i: number): number {
  return t.start + knobs.ttftMs + Math.max(0, i) * knobs.itlMs;
}

/** One SSE event; `event` names it, as the Responses and Messages APIs do. */
export function sse(data: object, event?: string): string {
  return `${event === undefined ? "" : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`;
}

export const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };

// Pull-driven, so a token is produced only when the reader is ready for it; a cancelled
// stream (client gone) stops the generator and its timers instead of running to the end.
export function sseBody(frames: AsyncGenerator<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await frames.next();
      if (cancelled) return;
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    cancel() {
      cancelled = true;
      void frames.return(undefined);
    },
  });
}

// One timer for many streams, set for the earliest deadline; when it fires it releases
// every token due within COALESCE_MS. Thousands of per-token timers (16 streams at 8 ms
// ITL is 2,000/s) make workerd fire them late, by ~10 ms measured in one isolate; one
// timer at a time keeps tokens on schedule. Deadlines stay absolute, so releasing a
// token up to COALESCE_MS early never accumulates. A Ticker must not be shared across
// Durable Objects (each has its own I/O context): a LoadAgent owns one, and an HTTP
// request to the mock gets its own.
// In workerd the clock only moves across I/O, and a timer is I/O, so now() is fresh here.
const COALESCE_MS = 1;

function wait(ms: number): Promise<void> {
  if (typeof scheduler !== "undefined" && typeof scheduler.wait === "function") return scheduler.wait(ms);
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

export class Ticker {
  private readonly due: Array<{ at: number; resolve: () => void }> = [];
  private armedFor = Number.POSITIVE_INFINITY;

  sleepUntil(deadline: number): Promise<void> {
    if (deadline - performance.now() <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let i = this.due.length;
      while (i > 0 && this.due[i - 1]!.at > deadline) i--;
      this.due.splice(i, 0, { at: deadline, resolve });
      this.arm();
    });
  }

  private arm(): void {
    const first = this.due[0];
    if (!first || first.at >= this.armedFor) return;
    this.armedFor = first.at;
    void wait(Math.max(0, first.at - performance.now())).then(() => {
      this.armedFor = Number.POSITIVE_INFINITY;
      const now = performance.now();
      let n = 0;
      while (n < this.due.length && this.due[n]!.at <= now + COALESCE_MS) n++;
      for (const d of this.due.splice(0, n)) d.resolve();
      this.arm();
    });
  }
}
