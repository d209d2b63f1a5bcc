// Row shapes of a run's agents and credits (run-store.ts): plain data, no runtime imports,
// so views and the CLI can share the types without Workers types.

export interface AgentRow {
  id: string;
  ord: number;
  name: string | null;
  region: string | null;
  joinedAt: number;
  lastSeen: number;
  expiresAt: number;
  alive: boolean;
  outstanding: number;
  inflight: number;
  shareSent: number;
  shareAcked: number;
  calls: number;
}

export interface CreditRow {
  seq: number;
  /** The holder's ordinal (AgentRow.ord). */
  agent: number;
  at: number | null;
  warmup: boolean;
}
