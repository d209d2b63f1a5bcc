// multi_turn sessions on one agent (README, "Datasets and workloads"), for the agent loop
// (engine.ts).
//
// Concurrency counts sessions: at most `share` are under way, each with at most one
// turn in flight. A session starts with an item the coordinator handed out with a lease
// (sessions are numbered across the run, and sampled as requests are in other runs);
// each turn takes the next held credit, so the ledger and stop.requests count
// turns. A turn goes out after the earlier turns' prompts and the target's real answers,
// once its delay has passed since the previous answer. A stop, or a drain that leaves no
// credit for the next turn, ends sessions between turns: they are counted as cut.

import type { DatasetItem } from "../contract/dataset";
import { DEFAULT_TOKENIZER } from "../contract/spec";
import type { Job } from "./prompt";
import { turnRequest } from "./prompt";
import * as st from "./state";
import type { AgentState, Credit, Session } from "./state";

/** What the sessions need of the agent loop. */
export interface SessionHost {
  state(): AgentState;
  /** The run's dataset items (null until read). */
  items(): DatasetItem[] | null;
  /** Requests in flight now. */
  inflight(): number;
  /** Sends one request; `onDone` gets whether it succeeded and the answer's text. */
  launch(seq: number, job: Job, onDone?: (ok: boolean, answer: string | null) => void): void;
  /** The plain request for a credit (an item that is not a session). */
  jobOf(c: Credit): Job;
  /** Epoch ms. */
  wallNow(): number;
  /** Wakes the loop in this many ms at the latest. */
  wakeIn(ms: number): void;
}

export class Sessions {
  /** Sessions with a turn in flight (in memory: a slice ends with none). */
  private readonly busy = new Set<Session>();

  private readonly host: SessionHost;

  constructor(host: SessionHost) {
    this.host = host;
  }

  /** Ready turns of sessions under way first, then new sessions; returns how many were sent. */
  launchTurns(budget: number): number {
    const h = this.host;
    const s = h.state();
    const sessions = s.sessions!;
    let n = 0;
    if (s.stop !== "running" && s.stop !== "finish") return 0;
    const wall = h.wallNow();
    let soonest = Number.POSITIVE_INFINITY;
    for (const x of sessions) {
      if (n >= budget || h.inflight() >= s.share || s.held.length === 0) break;
      if (this.busy.has(x)) continue;
      if (x.readyAt > wall) {
        soonest = Math.min(soonest, x.readyAt);
        continue;
      }
      this.launchTurn(x, s.held.shift()!);
      n++;
    }
    const items = (s.sessionItems ??= []);
    // Sessions under way come first: a credit starts a new session only when every session
    // that will need another turn can still have one, so a budget that runs out cuts as few
    // sessions as it can. Once the budget is all granted (finish), the credits in hand are
    // the last: every remaining turn of the sessions under way keeps one, and so does each
    // new session's, so only the session started last can be cut (every credit is still
    // sent: a budget that is not a whole number of sessions ends one short).
    const finishing = s.stop === "finish";
    let reserved = 0;
    for (const x of sessions) reserved += finishing ? this.turnsAfter(x) : Math.min(1, this.turnsAfter(x));
    while (n < budget && h.inflight() < s.share && sessions.length < s.share && s.held.length > reserved && items.length > 0) {
      if (finishing) reserved += this.turnsOf(items[0]!) - 1;
      const c = s.held.shift()!;
      const x: Session = { item: items.shift()!, turn: 0, history: [], readyAt: 0 };
      sessions.push(x);
      st.countSession(s, "started");
      this.launchTurn(x, c);
      n++;
    }
    if (soonest !== Number.POSITIVE_INFINITY) h.wakeIn(soonest - wall);
    return n;
  }

  /** Ends sessions that can send no further turn: the run said return (or is gone), or finish with no credit left. */
  tend(): void {
    const s = this.host.state();
    if (!s.sessions || s.sessions.length === 0) return;
    const over = s.stop === "return" || s.stop === "gone" || (s.stop === "finish" && s.held.length === 0);
    if (!over) return;
    for (const x of [...s.sessions]) if (!this.busy.has(x)) this.end(x, "cut");
  }

  /** How many turns an item's session sends (one for an item that is not a session). */
  private turnsOf(item: number): number {
    return Math.max(1, this.host.items()?.[item]?.turns?.length ?? 0);
  }

  /** Turns a session under way will still send, beyond the one in flight. */
  private turnsAfter(x: Session): number {
    return Math.max(0, this.turnsOf(x.item) - x.turn - (this.busy.has(x) ? 1 : 0));
  }

  private launchTurn(x: Session, c: Credit): void {
    const h = this.host;
    const s = h.state();
    const item = h.items()?.[x.item];
    if (!item?.turns?.length) {
      // Not a session (an index past the items cannot come from the coordinator): one plain request.
      this.end(x, "completed");
      h.launch(c.seq, h.jobOf(c));
      return;
    }
    const job = turnRequest(s.spec.workload, c.seq, item, x.turn, x.history, s.spec.target.tokenizer ?? DEFAULT_TOKENIZER);
    this.busy.add(x);
    h.launch(c.seq, job, (ok, answer) => {
      this.busy.delete(x);
      if (!ok || answer === null) return this.end(x, "cut"); // no answer to carry on with
      x.history = [...(job.messages ?? [{ role: "user", content: job.prompt }]), { role: "assistant", content: answer }];
      x.turn++;
      const next = item.turns![x.turn];
      if (next === undefined) return this.end(x, "completed");
      x.readyAt = h.wallNow() + (next.delayMs ?? 0);
    });
  }

  private end(x: Session, how: "completed" | "cut"): void {
    const s = this.host.state();
    const i = s.sessions?.indexOf(x) ?? -1;
    if (i < 0) return;
    s.sessions!.splice(i, 1);
    if (s.stop !== "gone") st.countSession(s, how);
  }
}
