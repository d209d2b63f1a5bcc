// What of the dataset an agent is handed (docs/ARCHITECTURE.md, "The credit protocol"):
// each credit in its wire form with its item, and in a multi_turn run the sessions it
// starts and their items. An item is a pure function of the seed and a counter (the seq,
// or the session number counted across the run), so only that counter is stored, never a
// list of items; a trace replay's items are the exception, kept with their leases.

import { itemIndex } from "../contract/dataset-sampling";
import type { LeaseAnswer } from "../contract/protocol";
import type { RunConfig } from "../contract/run-plan";
import type { CreditRow, RunStore } from "./run-store";

export type WireCredit = LeaseAnswer["credits"][number];

/**
 * A credit as the agent sees it. With a dataset, its item: a trace replay's stored one, else
 * a pure function of the seq (contract/dataset-sampling.ts), so nothing more is stored.
 */
export function wireCredit(c: Pick<CreditRow, "seq" | "at" | "warmup" | "item">, cfg: RunConfig): WireCredit {
  const ds = cfg.dataset;
  // multi_turn: a credit is a turn; sessions get their items with the lease (LeaseOutcome.sessions).
  const item =
    ds === undefined || ds.type === "multi_turn"
      ? null
      : (c.item ?? itemIndex(ds.replay ? "sequential" : ds.sampling, cfg.seed, c.seq, ds.items));
  return {
    seq: c.seq,
    ...(c.at === null ? {} : { at: c.at }),
    ...(c.warmup ? { warmup: true } : {}),
    ...(item === null ? {} : { item }),
  };
}

/**
 * multi_turn: session numbers for the new sessions an agent asked for, counted across the
 * run (meta sessionCursor), so sampling goes over sessions as it goes over requests in
 * other runs. Asked for with a lease or a report (reports go on during the drain, so an
 * agent finishing the credits it holds can still start sessions with them).
 */
export function startSessions(store: RunStore, cfg: RunConfig, wanted: number | undefined, share: number): [number, number] | null {
  if (cfg.dataset?.type !== "multi_turn" || !wanted) return null;
  // During the drain the share may read 0; an agent never asks for more than its share.
  const n = Math.min(wanted, Math.max(share, 1));
  if (n === 0) return null;
  const first = store.getMeta<number>("sessionCursor") ?? 0;
  store.putMeta("sessionCursor", first + n);
  return [first, n];
}

/** The items of session numbers [first, first + count). */
export function sessionItems(cfg: RunConfig, [first, count]: [number, number]): number[] {
  const ds = cfg.dataset!;
  return Array.from({ length: count }, (_, i) => itemIndex(ds.sampling, cfg.seed, first + i, ds.items));
}
