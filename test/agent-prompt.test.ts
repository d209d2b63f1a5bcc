// Seeded synthetic prompts: a pure function of (seed, seq).
import { describe, expect, it } from "vitest";
import { jobFor } from "../agent/prompt";
import { countTokens } from "../contract/tokenizer";
import { TOKENIZERS } from "../contract/spec";

const workload = (seed: number, inMean = 550, inStd = 0, outMean = 128, outStd = 0) => ({
  inputTokens: { mean: inMean, stddev: inStd },
  outputTokens: { mean: outMean, stddev: outStd },
  seed,
});

describe("synthetic prompts", () => {
  it("gives the same prompt and lengths for the same seed and seq, on any agent", () => {
    for (const seq of [0, 1, 17, 2 ** 33 + 5]) {
      expect(jobFor(workload(42, 300, 50, 100, 30), seq)).toEqual(jobFor(workload(42, 300, 50, 100, 30), seq));
    }
  });

  it("gives different prompts to different seqs and to different seeds", () => {
    const a = jobFor(workload(1), 0).prompt;
    expect(jobFor(workload(1), 1).prompt).not.toBe(a);
    expect(jobFor(workload(2), 0).prompt).not.toBe(a);
    expect(jobFor(workload(1), 2 ** 32).prompt).not.toBe(a); // the high half of seq counts too
  });

  it("has exactly the input token count in words, and the means when stddev is 0", () => {
    const j = jobFor(workload(7, 550, 0, 128, 0), 3);
    expect(j.inputTokens).toBe(550);
    expect(j.outputTokens).toBe(128);
    expect(j.prompt.split(" ")).toHaveLength(550);
    expect(j.prompt).toMatch(/^[a-z]+( [a-z]+)*$/);
  });

  it("draws lengths around the mean with the given spread, never below 1", () => {
    const n = 4000;
    const ins: number[] = [];
    for (let seq = 0; seq < n; seq++) ins.push(jobFor(workload(9, 200, 40, 1, 50), seq).inputTokens);
    const mean = ins.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(ins.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    expect(mean).toBeGreaterThan(197);
    expect(mean).toBeLessThan(203);
    expect(sd).toBeGreaterThan(37);
    expect(sd).toBeLessThan(43);
    for (let seq = 0; seq < 200; seq++) expect(jobFor(workload(9, 1, 0, 1, 50), seq).outputTokens).toBeGreaterThanOrEqual(1);
  });

  it("has exactly the asked input tokens by every shipped tokenizer, from 1 token to 20,000", () => {
    for (const name of TOKENIZERS) {
      for (const [mean, seq] of [
        [1, 0],
        [2, 5],
        [7, 1],
        [550, 2],
        [4096, 3],
        [20_000, 4],
      ] as const) {
        const j = jobFor(workload(11, mean), seq);
        expect(j.inputTokens).toBe(mean);
        expect(countTokens(j.prompt, name), `${name}, ${mean} tokens`).toBe(mean);
      }
      // Drawn lengths too, on many seeds: every word and every neighbour pair is covered.
      for (let seq = 0; seq < 300; seq++) {
        const j = jobFor(workload(seq, 40, 30), seq);
        expect(countTokens(j.prompt, name), `${name}, seq ${seq}`).toBe(j.inputTokens);
      }
    }
  });
});
