// Arrivals and ramps (README, RunSpec `load`): gamma arrivals of a given smoothness from
// the seeded schedule, and concurrency or rate rising linearly over load.rampSeconds.

import { describe, expect, it } from "vitest";
import { nextSlot, rampedAt, startSchedule } from "../durable/schedule";
import type { Arrival } from "../durable/schedule";
import { advance, call, createRun, join, lease } from "./helpers";

function gaps(arrival: Arrival, rate: number, n: number, smoothness = 1, seed = 7): number[] {
  let c = startSchedule(seed);
  const out: number[] = [];
  let last = 0;
  for (let i = 0; i < n; i++) {
    const [at, next] = nextSlot(c, rate, arrival, smoothness);
    if (i > 0) out.push(at - last);
    last = at;
    c = next;
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const cv = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2))) / m;
};

describe("gamma arrivals", () => {
  it.each([
    [1, 1], // Poisson: exponential gaps
    [0.25, 2], // bursty
    [16, 0.25], // even
  ])("with smoothness %s have gaps of the asked mean and a coefficient of variation near %s", (smoothness, expectedCv) => {
    const g = gaps("gamma", 50, 40_001, smoothness);
    expect(mean(g)).toBeGreaterThan(20 * 0.97);
    expect(mean(g)).toBeLessThan(20 * 1.03);
    expect(cv(g)).toBeGreaterThan(expectedCv * 0.93);
    expect(cv(g)).toBeLessThan(expectedCv * 1.07);
  });

  it("are the same sequence for the same seed, and another for another seed", () => {
    expect(gaps("gamma", 10, 100, 0.5, 3)).toEqual(gaps("gamma", 10, 100, 0.5, 3));
    expect(gaps("gamma", 10, 100, 0.5, 3)).not.toEqual(gaps("gamma", 10, 100, 0.5, 4));
  });
});

describe("a rate ramp", () => {
  it("places as many arrivals by each moment as the linearly rising rate promises", () => {
    // Rate 100/s reached after 10 s: 125 arrivals by 5 s, 500 by 10 s, then 100 a second.
    const slots = Array.from({ length: 1_000 }, (_, k) => rampedAt((k * 1000) / 100, 10_000));
    const by = (ms: number) => slots.filter((t) => t < ms).length;
    expect(by(5_000)).toBeGreaterThanOrEqual(124);
    expect(by(5_000)).toBeLessThanOrEqual(126);
    expect(by(10_000)).toBe(500);
    expect(by(12_000)).toBe(700);
  });

  it("hands out through leases only the first second's share of a two-second ramp", async () => {
    const run = await createRun({ load: { rate: 100, rampSeconds: 2 }, stop: { requests: 1_000 } });
    const agentId = await join(run);
    const first = await lease(run, agentId, 1_000);
    // Lease-ahead is one second: the ramp's first second holds 100·1²/(2·2) = 25 arrivals
    // after the one at 0, the last exactly at 1 s; without the ramp it would hold 101.
    expect(first.body.credits.length).toBe(26);
    const ats = first.body.credits.map((c: { at: number }) => c.at);
    expect(Math.max(...ats)).toBeLessThanOrEqual(1_000);
  });
});

describe("a concurrency ramp", () => {
  it("grows the in-flight pool from one to load.concurrency over rampSeconds", async () => {
    const run = await createRun({ load: { concurrency: 8, rampSeconds: 4 }, stop: { requests: 1_000 } });
    const agentId = await join(run);
    const shares: number[] = [];
    for (let i = 0; i <= 5; i++) {
      shares.push((await lease(run, agentId, 1)).body.concurrency);
      await advance(run, 1_000);
    }
    expect(shares).toEqual([1, 2, 4, 6, 8, 8]);
  });
});

describe("load validation", () => {
  it.each([
    [{ rate: 5, smoothness: 2 }, "load.smoothness"],
    [{ concurrency: 2, smoothness: 2 }, "load.smoothness"],
    [{ rate: 5, arrival: "gamma", smoothness: 0 }, "load.smoothness"],
    [{ concurrency: 2, rampSeconds: 3601 }, "load.rampSeconds"],
  ])("refuses %j, naming the field", async (load, field) => {
    const res = await call("POST", "/v1/runs", { body: { target: { url: "builtin:mock" }, stop: { requests: 1 }, load } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.error.message).toContain(field);
  });
});
