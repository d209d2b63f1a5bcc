// Follows a run live until it completes, and returns its final results.
//
// Two requests run side by side: status long-polls (?wait=0.5: answered at once on a
// phase change, else after half a second) feed the progress line, and a results
// long-poll (?wait=20) that the coordinator answers as the run completes, so the final
// results do not depend on a poll landing inside a short grace window.

import type { ApiClient } from "./api.ts";
import { CliError } from "./errors.ts";
import { visibleLines } from "./escape.ts";
import { RateMeter, progressLine } from "./progress.ts";
import type { PublicSpec, Results, Snapshot } from "./types.ts";

const STATUS_WAIT_S = 0.5;
const RESULTS_WAIT_S = 20;
/** How long the server may stay unreachable (a restart, a deploy) before following gives up. */
const MAX_OFFLINE_MS = 60_000;
/** Without a terminal, a progress line this often (and at every phase change). */
const PLAIN_INTERVAL_MS = 5_000;
const PLAIN_REPEAT_MS = 60_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The one progress line on stderr: redrawn in place on a terminal, printed now and then otherwise. */
export class StatusLine {
  private readonly tty: boolean;
  private paused = false;
  private drawn = false;
  private lastPrinted = 0;
  private lastPrintedText = "";
  private lastText = "";
  readonly out: NodeJS.WriteStream;

  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.out = out;
    this.tty = out.isTTY === true;
  }

  get isTTY(): boolean {
    return this.tty;
  }

  update(raw: string, important = false): void {
    const text = visibleLines(raw);
    this.lastText = text;
    if (this.paused) return;
    if (this.tty) {
      const cols = this.out.columns || 120;
      this.out.write(`\r\x1b[2K${text.length > cols - 1 ? text.slice(0, cols - 1) : text}`);
      this.drawn = true;
    } else if (this.plainDue(text, important)) {
      this.out.write(`${text}\n`);
      this.lastPrinted = Date.now();
      this.lastPrintedText = text;
    }
  }

  // A log gets a line when something changed, at most every few seconds; the same line
  // again only as a rare sign of life.
  private plainDue(text: string, important: boolean): boolean {
    const changed = text !== this.lastPrintedText;
    const since = Date.now() - this.lastPrinted;
    return changed ? important || since >= PLAIN_INTERVAL_MS : since >= PLAIN_REPEAT_MS;
  }

  /** Prints a message on its own line, above the progress line. */
  log(text: string): void {
    this.clear();
    this.out.write(`${visibleLines(text)}\n`);
    if (!this.paused && this.tty && this.lastText) this.update(this.lastText);
  }

  clear(): void {
    if (this.tty && this.drawn) this.out.write("\r\x1b[2K");
    this.drawn = false;
  }

  pause(): void {
    this.clear();
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (this.lastText) this.update(this.lastText);
  }

  /** The last line, left on screen. */
  finish(raw: string): void {
    const text = visibleLines(raw);
    this.paused = false;
    this.clear();
    if (this.tty || text !== this.lastPrintedText) this.out.write(`${text}\n`);
    this.lastPrintedText = text;
  }
}

export interface FollowOptions {
  client: ApiClient;
  id: string;
  token: string;
  /** null: follow silently. */
  line: StatusLine | null;
}

function isTransient(e: unknown): e is CliError {
  return e instanceof CliError && e.transient;
}

export async function follow({ client, id, token, line }: FollowOptions): Promise<Results> {
  let spec: PublicSpec | null = null;
  let settled = false;

  const waiter = (async (): Promise<Results> => {
    let offlineSince: number | null = null;
    for (;;) {
      try {
        const r = await client.results(id, token, spec === null ? 0 : RESULTS_WAIT_S);
        offlineSince = null;
        spec ??= r.spec;
        if (r.final) return r;
      } catch (e) {
        if (!isTransient(e)) throw e;
        offlineSince ??= Date.now();
        if (Date.now() - offlineSince > MAX_OFFLINE_MS) throw e;
        await sleep(1_000);
      }
    }
  })();
  // Observed here so a failure is never an unhandled rejection while the loop below runs.
  waiter.then(
    () => (settled = true),
    () => (settled = true),
  );

  const meter = new RateMeter();
  let lastPhase = "";
  let last: Snapshot | null = null;
  let offlineSince: number | null = null;
  while (!settled) {
    let s: Snapshot;
    try {
      s = await client.status(id, token, STATUS_WAIT_S);
      offlineSince = null;
    } catch (e) {
      // 404 right after completion is the grace-0 wipe: the waiter holds the answer.
      if (e instanceof CliError && e.status === 404) break;
      if (!isTransient(e)) {
        if (settled) break;
        throw e;
      }
      offlineSince ??= Date.now();
      if (Date.now() - offlineSince > MAX_OFFLINE_MS) break; // the waiter reports the failure
      if (last) line?.update(progressLine({ snapshot: last, spec, rate: null, bar: line.isTTY, note: "(server unreachable, retrying)" }));
      await sleep(1_000);
      continue;
    }
    // The final line comes from the results, below.
    if (s.phase === "complete") break;
    last = s;
    meter.add(s.serverTime ? Date.parse(s.serverTime) : Date.now(), s.counts.completed + s.counts.failed + s.counts.abandoned);
    line?.update(progressLine({ snapshot: s, spec, rate: meter.rate(), bar: line.isTTY }), s.phase !== lastPhase);
    lastPhase = s.phase;
  }

  let results: Results;
  try {
    results = await waiter;
  } catch (e) {
    if (e instanceof CliError && e.status === 404 && spec !== null) {
      const grace = (spec as PublicSpec).graceSeconds;
      throw new CliError(`run ${id} was wiped before its final results could be read (graceSeconds ${grace ?? "?"})`, { status: 404 });
    }
    throw e;
  }
  const rate = results.metrics.request_throughput?.avg ?? null;
  line?.finish(progressLine({ snapshot: results, spec: results.spec, rate, bar: line.isTTY }));
  return results;
}
