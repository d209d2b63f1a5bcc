// Concurrency shares: how many requests each agent may have in flight. The guarantee
// (docs/ARCHITECTURE.md, "The run lifecycle") is that the shares agents may be acting on never sum above the pool,
// even while shares move between agents. A share an agent was told is "in effect"
// until the agent shows it applied a smaller one, so capacity taken from one agent is
// given to another only after the first has shrunk:
//
//   effective(a) = max(sent, acked)          sent: the share in a's latest response
//   share for a  = min(target(a), pool − Σ effective(others))
//
// `acked` becomes `sent` on the agent's next new call when it reports `inflight ≤ sent`
// (or when the share grew, which is harmless). Dead agents hold nothing.

export interface ShareRow {
  id: string;
  alive: boolean;
  shareSent: number;
  shareAcked: number;
}

/** Even split of the pool over the live agents, in join order; the first get the remainder. */
export function targetShare(pool: number, liveIdsInJoinOrder: readonly string[], id: string): number {
  const n = liveIdsInJoinOrder.length;
  const i = liveIdsInJoinOrder.indexOf(id);
  if (i < 0 || n === 0) return 0;
  return Math.floor(pool / n) + (i < pool % n ? 1 : 0);
}

export function effectiveShare(a: ShareRow): number {
  return a.alive ? Math.max(a.shareSent, a.shareAcked) : 0;
}

export function shareFor(pool: number, agents: readonly ShareRow[], liveIdsInJoinOrder: readonly string[], id: string): number {
  const othersHold = agents.reduce((sum, a) => (a.id === id ? sum : sum + effectiveShare(a)), 0);
  return Math.max(0, Math.min(targetShare(pool, liveIdsInJoinOrder, id), pool - othersHold));
}

/** What the agent's new call proves about the share it is applying. */
export function acknowledge(a: ShareRow, inflight: number | undefined): number {
  if (a.shareSent >= a.shareAcked) return a.shareSent;
  return inflight !== undefined && inflight <= a.shareSent ? a.shareSent : a.shareAcked;
}
