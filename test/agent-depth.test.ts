import { describe, expect, it } from "vitest";
import { leaseDepth, leaseWant, needsCredits } from "../agent/policy";
import type { AgentState } from "../agent/state";

describe("the agent's lease depth", () => {
  it("covers two coordinator round trips at the share's send rate, between one and eight shares", () => {
    // Share 8 on a 4 ms target sends 2 requests a millisecond; a 10 ms round trip needs 40 in hand.
    expect(leaseDepth(8, 8 / 4, 10)).toBe(40);
    // A slow target or a fast coordinator: one share is enough.
    expect(leaseDepth(8, 8 / 500, 10)).toBe(8);
    // A far coordinator on a fast target: capped at eight shares.
    expect(leaseDepth(8, 8 / 1, 300)).toBe(64);
    // Nothing measured yet, or no share: the old two-share behaviour (one share of depth).
    expect(leaseDepth(8, 0, null)).toBe(8);
    expect(leaseDepth(0, 5, 10)).toBe(0);
  });

  const state = (share: number, held: number): AgentState =>
    ({ spec: { load: { concurrency: share } }, share, held: Array.from({ length: held }, (_, seq) => ({ seq })) }) as unknown as AgentState;

  it("asks for credits while fewer than the depth are held, and asks for the room the coordinator will give", () => {
    // Depth 40 on share 8: with 20 held and 8 in flight it asks again, for 48 - 28 = 20.
    expect(needsCredits(state(8, 20), { wall: 0, inflight: 8 }, 40)).toBe(true);
    expect(leaseWant(state(8, 20), 8, 1_000, 40)).toBe(20);
    // Without depth (one share), 20 held is plenty.
    expect(needsCredits(state(8, 20), { wall: 0, inflight: 8 }, 0)).toBe(false);
  });
});
