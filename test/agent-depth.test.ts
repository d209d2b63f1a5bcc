import { describe, expect, it } from "vitest";
import { drainFirst, leaseDepth, leaseWant, needsCredits } from "../agent/policy";
import type { AgentState } from "../agent/state";

describe("the agent's lease depth", () => {
  it("covers three report-and-lease cycles at the share's send rate, between one and eight shares", () => {
    // Share 8 on a 4 ms target sends 2 requests a millisecond; three 10 ms cycles need 60 in hand.
    expect(leaseDepth(8, 8 / 4, 10)).toBe(60);
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

  it("on a target too fast for the deepest lease, sends what it holds before asking again", () => {
    // Share 32 on a 0.5 ms target over a 20 ms cycle would need 3,840 in hand, far past 8 shares (256).
    expect(drainFirst(32, 32 / 0.5, 20)).toBe(true);
    // Within twice the cap (a 20 ms target, or a fast coordinator), it leases ahead as usual.
    expect(drainFirst(32, 32 / 20, 20)).toBe(false);
    expect(drainFirst(32, 32 / 0.5, 1)).toBe(false);
    expect(drainFirst(0, 5, 20)).toBe(false);
    // Draining first: nothing is asked for while credits are held, at once when none are.
    expect(needsCredits(state(32, 1), { wall: 0, inflight: 32 }, 256, true)).toBe(false);
    expect(needsCredits(state(32, 0), { wall: 0, inflight: 32 }, 256, true)).toBe(true);
    expect(needsCredits(state(32, 1), { wall: 0, inflight: 32 }, 256, false)).toBe(true);
  });
});
