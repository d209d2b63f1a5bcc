// The live progress line: done/total, in flight, failed (and abandoned), req/s, ETA. Pure formatting
// plus a small rate estimator; follow.ts decides when and where it is written.

import { visible } from "./escape.ts";
import type { PublicSpec, Snapshot } from "./types.ts";

const WINDOW_MS = 5_000;

/** Requests settled per second over the last few seconds, on the server's clock. */
export class RateMeter {
  private samples: Array<{ t: number; done: number }> = [];

  add(t: number, done: number): void {
    this.samples.push({ t, done });
    while (this.samples.length > 2 && t - (this.samples[1]?.t ?? t) >= WINDOW_MS) this.samples.shift();
  }

  /** null until two samples at least half a second apart exist. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t - first.t < 500) return null;
    return ((last.done - first.done) * 1000) / (last.t - first.t);
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function bar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * width);
  return `[${"█".repeat(full)}${"░".repeat(width - full)}]`;
}

export interface LineInput {
  snapshot: Snapshot;
  spec: PublicSpec | null;
  rate: number | null;
  /** Draw a bar (terminals only). */
  bar: boolean;
  note?: string | undefined;
}

export function progressLine({ snapshot: s, spec, rate, bar: withBar, note }: LineInput): string {
  const c = s.counts;
  const done = c.completed + c.failed + c.abandoned;
  // Agents' last reports; once complete, nothing can be in flight that still counts.
  const inflight = s.phase === "complete" ? 0 : s.agents.reduce((a, g) => a + g.inflight, 0);
  const total = spec?.stop?.requests;
  const duration = spec?.stop?.durationSeconds;
  const now = s.serverTime ? Date.parse(s.serverTime) : Date.now();
  const elapsed = s.startedAt ? (now - Date.parse(s.startedAt)) / 1000 : 0;

  const parts: string[] = [visible(s.phase).padEnd(8)];
  // The bar follows whichever stop condition is nearer to being met.
  let fraction: number | null = null;
  if (total !== undefined) fraction = done / total;
  if (duration !== undefined && s.startedAt) fraction = Math.max(fraction ?? 0, elapsed / duration);
  if (s.phase === "complete") fraction = 1;
  if (withBar && fraction !== null) parts.push(bar(fraction, 20));
  parts.push(total !== undefined ? `${done}/${total} (${Math.floor((100 * done) / total)}%)` : `${done} done`);
  if (duration !== undefined) parts.push(`${formatDuration(elapsed)}/${formatDuration(duration)}`);
  // The same words as the summary under the table: failed requests and abandoned credits
  // are different things (a force stop abandons; nothing failed).
  parts.push(`in flight ${inflight}`, `failed ${c.failed}`);
  if (c.abandoned > 0) parts.push(`abandoned ${c.abandoned}`);
  if (rate !== null) parts.push(`${rate.toFixed(1)} req/s`);

  let eta: number | null = null;
  if (s.phase === "running") {
    if (total !== undefined && rate !== null && rate > 0) eta = (total - done) / rate;
    if (duration !== undefined && s.startedAt) eta = Math.min(eta ?? Number.POSITIVE_INFINITY, duration - elapsed);
  }
  if (eta !== null && Number.isFinite(eta)) parts.push(`ETA ${formatDuration(eta)}`);
  if (s.phase === "created") parts.push("waiting for agents to join");
  if (note) parts.push(note);
  return parts.join("  ");
}
