// The shared request-timeout timer (agent/deadlines.ts): each deadline fires when due and
// not before, a cancelled one never fires, and requests sharing a timeout share one timer.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Deadlines } from "../agent/deadlines";

describe("request deadlines on one timer", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("serves a hundred requests with one timeout on one timer, and fires each when due", () => {
    const d = new Deadlines();
    const fired: number[] = [];
    for (let i = 0; i < 100; i++) {
      d.add(1_000, () => fired.push(i));
      vi.advanceTimersByTime(1);
    }
    expect(vi.getTimerCount()).toBe(1);
    // 100 ms have passed: the first deadline (at 1,000 ms) is 900 ms away, the last at 1,099.
    vi.advanceTimersByTime(899);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([0]);
    vi.advanceTimersByTime(49);
    expect(fired).toHaveLength(50);
    expect(fired).toEqual(Array.from({ length: 50 }, (_, i) => i));
    vi.advanceTimersByTime(1_000);
    expect(fired).toHaveLength(100);
    expect(d.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("re-arms for a deadline earlier than the armed one", () => {
    const d = new Deadlines();
    const fired: string[] = [];
    d.add(1_000, () => fired.push("long"));
    d.add(200, () => fired.push("short"));
    vi.advanceTimersByTime(199);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["short"]);
    vi.advanceTimersByTime(799);
    expect(fired).toEqual(["short"]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["short", "long"]);
  });

  it("never fires a cancelled deadline, and leaves no timer armed once none is pending", () => {
    const d = new Deadlines();
    const fired: number[] = [];
    const cancels = [0, 1, 2].map((i) => d.add(100, () => fired.push(i)));
    cancels[1]!();
    cancels[1]!(); // twice is harmless
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([0, 2]);
    const c = d.add(100, () => fired.push(3));
    expect(vi.getTimerCount()).toBe(1);
    c();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(fired).toEqual([0, 2]);
  });

  it("cancels every pending request at once, and each one added after, without firing their deadlines", () => {
    const d = new Deadlines();
    const seen: string[] = [];
    d.add(
      100,
      () => seen.push("fire a"),
      () => seen.push("cancel a"),
    );
    const clearB = d.add(
      100,
      () => seen.push("fire b"),
      () => seen.push("cancel b"),
    );
    clearB();
    d.cancelAll();
    expect(seen).toEqual(["cancel a"]);
    d.add(
      100,
      () => seen.push("fire c"),
      () => seen.push("cancel c"),
    );
    expect(seen).toEqual(["cancel a", "cancel c"]);
  });
});
