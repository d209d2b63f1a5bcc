// How many edge agents a run gets when its spec does not say (contract/run-plan.ts;
// docs/ARCHITECTURE.md, "Cloudflare's limits"): against a target that answers only when
// done, every request waits for response headers for its whole life and one invocation
// may have six doing so, so agents are sized at six requests in flight each.

import { describe, expect, it } from "vitest";
import { readConfig } from "../contract/config";
import { HEADER_WAIT_LIMIT, defaultEdgeAgents, edgeInflightCap, planRun, waitsForHeaders } from "../contract/run-plan";
import { parseRunSpec } from "../contract/spec";
import { targetShare } from "../durable/shares";

const REMOTE = "https://api.example.org/v1/chat/completions";
const cfgWith = (vars: Record<string, string> = {}) =>
  readConfig({ ALLOWED_TARGETS: "api.example.org", MAX_CONCURRENCY: "1024", MAX_AGENTS: "256", ...vars });
const cfg = cfgWith();

type Body = Record<string, unknown>;
const specOf = (target: Body, load: Body, agents?: Body, c = cfg) =>
  parseRunSpec({ target, load, stop: { requests: 100 }, ...(agents ? { agents } : {}) }, c);
const plain = { url: REMOTE, model: "m" };
const streaming = { url: REMOTE, model: "m", stream: true };
const http = { url: "https://api.example.org/health", api: "http" };
const mock = { url: "builtin:mock" };

/** The largest share the coordinator's even split gives one of `agents` agents. */
const largestShare = (pool: number, agents: number) => {
  const ids = Array.from({ length: agents }, (_, i) => `a${i}`);
  return Math.max(...ids.map((id) => targetShare(pool, ids, id)));
};

describe("which targets keep a connection waiting for headers all the time", () => {
  it("is a non-streaming endpoint and an http target, not a stream, and never the in-isolate mock", () => {
    expect(waitsForHeaders(specOf(plain, { concurrency: 1 }).target)).toBe(true);
    expect(waitsForHeaders(specOf({ ...plain, api: "embeddings" }, { concurrency: 1 }).target)).toBe(true);
    expect(waitsForHeaders(specOf(http, { concurrency: 1 }).target)).toBe(true);
    expect(waitsForHeaders(specOf(streaming, { concurrency: 1 }).target)).toBe(false);
    expect(waitsForHeaders(specOf(mock, { concurrency: 1 }).target)).toBe(false);
    expect(edgeInflightCap(specOf(plain, { concurrency: 1 }).target)).toBe(6);
    expect(edgeInflightCap(specOf(streaming, { concurrency: 1 }).target)).toBe(Number.POSITIVE_INFINITY);
    expect(HEADER_WAIT_LIMIT).toBe(6);
  });

  it("is stored with the run's config, so its warnings can say so", () => {
    expect(planRun("r", specOf(plain, { concurrency: 4 }), cfg).config.waitsForHeaders).toBe(true);
    expect(planRun("r", specOf(streaming, { concurrency: 4 }), cfg).config.waitsForHeaders).toBe(false);
  });
});

describe("the default number of edge agents, concurrency mode", () => {
  it.each([
    [1, 1],
    [6, 1],
    [7, 2],
    [12, 2],
    [24, 4],
    [64, 11],
    [1024, 171],
  ])("gives a non-streaming target at concurrency %i %i agents: one per six in flight", (concurrency, agents) => {
    expect(planRun("r", specOf(plain, { concurrency }), cfg).config.edgeAgents).toBe(agents);
  });

  it("leaves no agent of a non-streaming or http target a share over six, with no agent to spare, for every concurrency up to MAX_CONCURRENCY", () => {
    for (const target of [plain, http]) {
      for (let concurrency = 1; concurrency <= 1024; concurrency++) {
        const agents = defaultEdgeAgents(specOf(target, { concurrency }), cfg.maxAgents);
        expect(largestShare(concurrency, agents), `concurrency ${concurrency}`).toBeLessThanOrEqual(HEADER_WAIT_LIMIT);
        // …and not one agent more than that takes.
        if (agents > 1) expect(largestShare(concurrency, agents - 1), `concurrency ${concurrency}`).toBeGreaterThan(HEADER_WAIT_LIMIT);
      }
    }
  });

  it("is capped by MAX_AGENTS, not by the 16 a streaming target is capped at", () => {
    expect(defaultEdgeAgents(specOf(plain, { concurrency: 1024 }), 64)).toBe(64);
    expect(defaultEdgeAgents(specOf(plain, { concurrency: 200 }), 256)).toBe(34);
  });

  it("keeps one agent per 16 in flight, at most 16, for a streaming target and for the built-in mock", () => {
    expect(defaultEdgeAgents(specOf(streaming, { concurrency: 24 }), 256)).toBe(2);
    expect(defaultEdgeAgents(specOf(streaming, { concurrency: 1024 }), 256)).toBe(16);
    expect(defaultEdgeAgents(specOf(mock, { concurrency: 24 }), 256)).toBe(2);
    expect(defaultEdgeAgents(specOf(streaming, { concurrency: 1024 }), 8)).toBe(8);
  });

  it("keeps an explicit agents.edge as asked, whatever the target", () => {
    expect(planRun("r", specOf(plain, { concurrency: 24 }, { edge: 2 }), cfg).config.edgeAgents).toBe(2);
    expect(planRun("r", specOf(plain, { concurrency: 24 }, { edge: 0 }), cfg).config.edgeAgents).toBe(0);
  });
});

describe("the default number of edge agents, rate mode", () => {
  it("sizes a non-streaming target by maxConcurrency over six when given", () => {
    expect(defaultEdgeAgents(specOf(plain, { rate: 50, maxConcurrency: 60 }), 256)).toBe(10);
    expect(defaultEdgeAgents(specOf(plain, { rate: 50, maxConcurrency: 5 }), 256)).toBe(1);
    // A streaming target keeps 16 in flight an agent.
    expect(defaultEdgeAgents(specOf(streaming, { rate: 50, maxConcurrency: 60 }), 256)).toBe(4);
  });

  it("falls back on one agent per 100 requests a second without maxConcurrency, since the latency is not known yet", () => {
    expect(defaultEdgeAgents(specOf(plain, { rate: 250 }), 256)).toBe(3);
    expect(defaultEdgeAgents(specOf(plain, { rate: 5_000 }, undefined, cfgWith({ MAX_RATE: "10000" })), 256)).toBe(50);
    expect(defaultEdgeAgents(specOf(streaming, { rate: 5_000 }, undefined, cfgWith({ MAX_RATE: "10000" })), 256)).toBe(16);
  });
});
