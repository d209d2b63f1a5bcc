import { describe, expect, it } from "vitest";
import { DEFAULTS, readConfig } from "../contract/config";
import { HEADER_WAIT_LIMIT } from "../contract/run-plan";

describe("operator configuration from wrangler vars", () => {
  it("takes every default when no var is set", () => {
    const cfg = readConfig({});
    expect(cfg).toEqual({ apiToken: undefined, allowedTargets: [], ...DEFAULTS });
  });

  it("reads integers in range and splits the allowlist into lower-case patterns", () => {
    const cfg = readConfig({
      API_TOKEN: "t",
      ALLOWED_TARGETS: " API.example.org, *.Example.com ,,",
      MAX_RATE: "250",
      POST_COMPLETE_GRACE_SECONDS: "0",
    });
    expect(cfg.apiToken).toBe("t");
    expect(cfg.allowedTargets).toEqual(["api.example.org", "*.example.com"]);
    expect(cfg.maxRate).toBe(250);
    expect(cfg.graceSecondsDefault).toBe(0);
  });

  it.each([
    ["blank", "  "],
    ["not a number", "lots"],
    ["a fraction", "1.5"],
    ["below its range", "0"],
    ["above its range", "1e12"],
  ])("falls back to the default for a var that is %s, instead of taking the service down", (_, raw) => {
    expect(readConfig({ MAX_CONCURRENCY: raw }).maxConcurrency).toBe(DEFAULTS.maxConcurrency);
  });

  it("treats an empty API token as unset, so run creation stays disabled", () => {
    expect(readConfig({ API_TOKEN: "" }).apiToken).toBeUndefined();
  });

  it("allows enough agents by default for MAX_CONCURRENCY at six a non-streaming edge agent, with room for external agents", () => {
    const cfg = readConfig({});
    const edge = Math.ceil(cfg.maxConcurrency / HEADER_WAIT_LIMIT);
    expect(edge).toBe(171);
    expect(cfg.maxAgents).toBeGreaterThan(edge);
  });

  it("parses an env object once (the same Config back), and another env object anew", () => {
    const env = { MAX_RATE: "250" };
    const first = readConfig(env);
    expect(readConfig(env)).toBe(first);
    const other = readConfig({ MAX_RATE: "300" });
    expect(other).not.toBe(first);
    expect([first.maxRate, other.maxRate]).toEqual([250, 300]);
  });
});
