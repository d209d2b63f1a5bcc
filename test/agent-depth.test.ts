import { describe, expect, it } from "vitest";
import { MAX_DEPTH_SHARES } from "../contract/protocol";
import { MIN_CALL_GAP_MS, drainFirst, leaseDepth, leaseWant, lowWater, needsCredits } from "../agent/policy";
import type { AgentState } from "../agent/state";

describe("the agent's lease depth", () => {
  it("covers three report-and-lease cycles at the share's send rate, between one and sixty-four shares", () => {
    // Share 8 on a 50 ms target sends 0.16 requests a millisecond; three 200 ms cycles need
    // 96 in hand (more than two 250 ms gaps' 80).
    expect(leaseDepth(8, 8 / 50, 200)).toBe(96);
    // A slow target or a fast coordinator: one share is enough.
    expect(leaseDepth(8, 8 / 500, 10)).toBe(8);
    expect(leaseDepth(8, 8 / 1000, 0.5)).toBe(8);
    // A far coordinator on a fast target: capped at sixty-four shares (MAX_DEPTH_SHARES).
    expect(MAX_DEPTH_SHARES).toBe(64);
    expect(leaseDepth(8, 8 / 1, 300)).toBe(512);
    // Nothing measured yet, or no share: the old two-share behaviour (one share of depth).
    expect(leaseDepth(8, 0, null)).toBe(8);
    expect(leaseDepth(0, 5, 10)).toBe(0);
  });

  it("holds enough for a busy agent to call about every MIN_CALL_GAP_MS, within sixty-four shares", () => {
    expect(MIN_CALL_GAP_MS).toBe(250);
    // Share 6 on a 30 ms target sends 0.2 a millisecond: 100 in hand, so a lease (at half
    // the depth of room) brings about 50 credits and calls come about 250 ms apart.
    expect(leaseDepth(6, 6 / 30, 1)).toBe(100);
    // Share 2 on a 10 ms target: 0.2 a millisecond, 100 in hand (under sixty-four shares, 128).
    expect(leaseDepth(2, 2 / 10, 1)).toBe(100);
    // Share 1 on a 1 ms target: 500 in a gap's cover, capped at sixty-four shares.
    expect(leaseDepth(1, 1, 1)).toBe(64);
    // The cycle's cover still wins where it asks for more: share 5 on a 20 ms target over
    // a 400 ms cycle, 300 against a gap's 125.
    expect(leaseDepth(5, 5 / 20, 400)).toBe(300);
    // A target of a second: 0.006 a millisecond, 2 in a gap: one share.
    expect(leaseDepth(6, 6 / 1000, 1)).toBe(6);
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

  it("holds off a lease until what it holds covers the round trip or half a gap, then fills the window", () => {
    // Share 6 on a 7.6 ms target (0.79 a millisecond) over a 5 ms cycle: three cycles of
    // sends are 12, half a gap of sends 99; the depth is sixty-four shares (384).
    expect(lowWater(6, 6 / 7.6, 5)).toBe(99);
    expect(leaseDepth(6, 6 / 7.6, 5)).toBe(384);
    // Half the depth has room at 192 held, but 150 still last: no lease yet.
    expect(needsCredits(state(6, 150), { wall: 0, inflight: 6 }, 384, false, 99)).toBe(false);
    expect(needsCredits(state(6, 150), { wall: 0, inflight: 6 }, 384)).toBe(true);
    // At 99 it asks, for the rest of the window: 285 credits in one call, not 192.
    expect(needsCredits(state(6, 99), { wall: 0, inflight: 6 }, 384, false, 99)).toBe(true);
    expect(leaseWant(state(6, 99), 6, 1_000, 384)).toBe(285);
    // A far coordinator: its round trip's cover wins (share 8, a 50 ms target, 200 ms cycles).
    expect(lowWater(8, 8 / 50, 200)).toBe(96);
    // A slow target: never under a share.
    expect(lowWater(6, 6 / 1000, 1)).toBe(6);
    // Nothing measured yet: no low-water mark, the half-depth rule alone.
    expect(lowWater(6, 6 / 7.6, null)).toBe(Number.POSITIVE_INFINITY);
    // A mark computed before the share grew (0 → 6, a first answer) still lets the new
    // share's worth be held: it never holds back below one share.
    expect(needsCredits(state(6, 6), { wall: 0, inflight: 0 }, 384, false, 0)).toBe(true);
    expect(needsCredits(state(6, 7), { wall: 0, inflight: 0 }, 384, false, 0)).toBe(false);
    // Where the low-water mark is above half the depth, the half-depth rule decides.
    expect(needsCredits(state(8, 20), { wall: 0, inflight: 8 }, 40, false, 96)).toBe(true);
  });

  it("on a target too fast for the deepest lease, sends what it holds before asking again", () => {
    // Share 32 on a 0.5 ms target over an 80 ms cycle (a coordinator across the internet)
    // sends 5,120 a cycle, past twice the window of sixty-five shares (4,160).
    expect(drainFirst(32, 32 / 0.5, 80)).toBe(true);
    expect(drainFirst(32, 32 / 0.5, 66)).toBe(true);
    // Within twice the window (a 20 ms target, a fast coordinator, or the local 8.5 ms cycle,
    // where leasing ahead delivered more than draining first), it leases ahead.
    expect(drainFirst(32, 32 / 0.5, 64)).toBe(false);
    expect(drainFirst(32, 32 / 20, 20)).toBe(false);
    expect(drainFirst(32, 32 / 0.5, 1)).toBe(false);
    expect(drainFirst(32, 32 / 0.5, 8.5)).toBe(false);
    expect(drainFirst(0, 5, 20)).toBe(false);
    // Draining first: nothing is asked for while credits are held, at once when none are.
    expect(needsCredits(state(32, 1), { wall: 0, inflight: 32 }, 256, true)).toBe(false);
    expect(needsCredits(state(32, 0), { wall: 0, inflight: 32 }, 256, true)).toBe(true);
    expect(needsCredits(state(32, 1), { wall: 0, inflight: 32 }, 256, false)).toBe(true);
  });
});
