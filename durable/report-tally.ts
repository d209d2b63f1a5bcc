// A report's counting, apart from the lease table it settles against: which mentions
// count (a seq settles once, docs/ARCHITECTURE.md "The credit protocol"), the result a
// restarted agent's held credits settle with, and what the settled credits add up to.
// Pure, so the rules that keep a drain from double-counting read without the store's
// reads and writes around them.

import type { ReportBody, ResultItem } from "../contract/protocol";
import { noSettlement } from "./run-machine";
import type { Settlement } from "./run-machine";
import type { CreditRow } from "./run-store";

export const RESTARTED = { code: "agent_restarted", type: "agent", message: "The agent restarted while it held this credit." };

export interface Settled {
  credit: CreditRow;
  result?: ResultItem;
}

/** The seqs a report mentions, each once with its result (null: returned), and how many mentions repeated one. */
export function mentionsOf(body: Pick<ReportBody, "results" | "returned">): {
  mentions: Map<number, ResultItem | null>;
  duplicates: number;
} {
  // Each seq once, the first mention wins; later mentions are duplicates.
  const mentions = new Map<number, ResultItem | null>();
  let duplicates = 0;
  for (const result of body.results) {
    if (mentions.has(result.seq)) duplicates++;
    else mentions.set(result.seq, result);
  }
  for (const seq of body.returned) {
    if (mentions.has(seq)) duplicates++;
    else mentions.set(seq, null);
  }
  return { mentions, duplicates };
}

/** What settled credits add up to, and the measured results among them (for metrics and the time series). */
export function tally(settled: readonly Settled[]): { x: Settlement; measured: ResultItem[] } {
  const x = noSettlement();
  const measured: ResultItem[] = [];
  for (const { credit, result } of settled) {
    if (!result) {
      if (credit.warmup) x.warmupReturned++;
      else x.returned++;
    } else if (credit.warmup) {
      if (result.ok) x.warmupCompleted++;
      else x.warmupFailed++;
    } else {
      if (result.ok) x.completed++;
      else x.failed++;
      measured.push(result);
    }
  }
  return { x, measured };
}
