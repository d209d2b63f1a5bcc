// Seeded synthetic prompts, shared prefixes and dataset items: pure functions of (seed, seq, item).
import { describe, expect, it } from "vitest";
import { jobFor, jobForItem, joinMessages, prefixIndex, prefixText, traceBlock, turnRequest } from "../agent/prompt";
import { MOONCAKE_BLOCK_TOKENS } from "../contract/dataset";
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

describe("shared prefixes (workload.sharedPrefix)", () => {
  const shared = (tokens: number, prompts: number, seed = 4) => ({ ...workload(seed, 60, 20), sharedPrefix: { tokens, prompts } });

  it("starts every prompt with one of the prefixes, byte-identical for every seq that draws the same one", () => {
    const w = shared(300, 3);
    const byIndex = new Map<number, string>();
    for (let seq = 0; seq < 60; seq++) {
      const index = prefixIndex(w.seed, seq, 3);
      const prefix = prefixText(w.seed, index, 300);
      expect(jobFor(w, seq).prompt.startsWith(`${prefix} `)).toBe(true);
      if (byIndex.has(index)) expect(prefix).toBe(byIndex.get(index));
      byIndex.set(index, prefix);
    }
    expect([...byIndex.keys()].sort()).toEqual([0, 1, 2]); // 60 seqs use all three
    expect(new Set(byIndex.values()).size).toBe(3); // and the three differ
  });

  it("gives every seq the same prefix when there is one prompt", () => {
    const prefix = prefixText(4, 0, 40);
    for (let seq = 0; seq < 20; seq++) expect(jobFor(shared(40, 1), seq).prompt.slice(0, prefix.length + 1)).toBe(`${prefix} `);
  });

  it("puts the prefix on top of the drawn input length, as AIPerf does, and counts both", () => {
    for (const name of TOKENIZERS) {
      for (let seq = 0; seq < 40; seq++) {
        const plain = jobFor(workload(4, 60, 20), seq);
        const j = jobFor(shared(128, 5), seq);
        // The seq's own draws are untouched: the same text follows the prefix.
        expect(j.prompt.endsWith(` ${plain.prompt}`)).toBe(true);
        expect(j.outputTokens).toBe(plain.outputTokens);
        expect(j.inputTokens).toBe(128 + plain.inputTokens);
        expect(countTokens(j.prompt, name), `${name}, seq ${seq}`).toBe(j.inputTokens);
      }
    }
  });

  it("draws the prefix index close to uniformly over many seqs", () => {
    const counts = new Array<number>(8).fill(0);
    for (let seq = 0; seq < 16_000; seq++) counts[prefixIndex(9, seq, 8)]! += 1;
    for (const c of counts) expect(Math.abs(c - 2000)).toBeLessThan(150);
  });

  it("gives different prefixes to different seeds", () => {
    expect(prefixText(1, 0, 50)).not.toBe(prefixText(2, 0, 50));
  });
});

const W = workload(7, 550, 0, 64, 0);

describe("dataset items: texts and conversations", () => {
  it("sends a single_turn text as it is, counted by the spec's tokenizer, with the item's output length", () => {
    const text = "Explain prefix caching in two sentences.";
    for (const name of TOKENIZERS) {
      const j = jobForItem(W, 3, { turns: [{ text, outputLength: 20 }] }, 0, name);
      expect(j).toEqual({ inputTokens: countTokens(text, name), outputTokens: 20, prompt: text });
    }
  });

  it("takes the output length from the turn, else the item, else the workload's draw", () => {
    expect(jobForItem(W, 0, { outputLength: 9, turns: [{ text: "a", outputLength: 5 }] }).outputTokens).toBe(5);
    expect(jobForItem(W, 0, { outputLength: 9, turns: [{ text: "a" }] }).outputTokens).toBe(9);
    expect(jobForItem(W, 0, { turns: [{ text: "a" }] }).outputTokens).toBe(64);
    // A spread draw is the seq's own: stable, and different seqs differ somewhere.
    const spread = workload(7, 550, 0, 64, 30);
    const draws = Array.from({ length: 10 }, (_, seq) => jobForItem(spread, seq, { turns: [{ text: "a" }] }).outputTokens);
    expect(Array.from({ length: 10 }, (_, seq) => jobForItem(spread, seq, { turns: [{ text: "a" }] }).outputTokens)).toEqual(draws);
    expect(new Set(draws).size).toBeGreaterThan(1);
  });

  it("passes a single_turn conversation through as messages, counting their contents", () => {
    const messages = [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Name three primes." },
    ];
    const j = jobForItem(W, 0, { turns: [{ messages }] });
    expect(j.messages).toEqual(messages);
    expect(j.prompt).toBe(joinMessages(messages));
    expect(j.prompt).toBe("You are terse.\n\nName three primes.");
    expect(j.inputTokens).toBe(countTokens("You are terse.") + countTokens("Name three primes."));
  });

  it("builds a later turn from the history of earlier prompts and the server's real answers", () => {
    const item = { sessionId: "s1", turns: [{ text: "Hi." }, { text: "And then?", outputLength: 7 }] };
    const history = [
      { role: "user", content: "Hi." },
      { role: "assistant", content: "Hello! How can I help?" },
    ];
    const j = turnRequest(W, 12, item, 1, history, "o200k_base");
    expect(j.messages).toEqual([...history, { role: "user", content: "And then?" }]);
    expect(j.outputTokens).toBe(7);
    const counted = ["Hi.", "Hello! How can I help?", "And then?"].reduce((n, t) => n + countTokens(t, "o200k_base"), 0);
    expect(j.inputTokens).toBe(counted);
    // The history given is not changed.
    expect(history).toHaveLength(2);
  });

  it("refuses a turn index the item does not have, naming turnIndex", () => {
    const item = { turns: [{ text: "a" }, { text: "b" }] };
    expect(() => turnRequest(W, 0, item, 2, [])).toThrow("turnIndex must be an integer from 0 to 1");
    expect(() => turnRequest(W, 0, item, -1, [])).toThrow("turnIndex");
    expect(() => jobForItem(W, 0, { hashIds: [1] }, 1)).toThrow("turnIndex must be 0");
    expect(() => jobForItem(W, 0, { turns: [{}] })).toThrow("turns[0] has neither text nor messages");
  });
});

describe("dataset items: mooncake_trace hash ids", () => {
  it("makes each hash id a block of exactly 512 tokens by every shipped tokenizer", () => {
    expect(MOONCAKE_BLOCK_TOKENS).toBe(512);
    for (const name of TOKENIZERS) {
      for (const id of [0, 1, 46, 2 ** 40]) expect(countTokens(traceBlock(7, id), name), `${name}, id ${id}`).toBe(512);
    }
  });

  it("gives identical hash ids byte-identical blocks, whatever the item or seq, and different ids different blocks", () => {
    const a = jobForItem(W, 0, { inputLength: 1024, hashIds: [46, 47] }).prompt;
    const b = jobForItem(W, 999, { inputLength: 1100, hashIds: [46, 47, 99] }).prompt;
    const block46 = traceBlock(7, 46);
    const block47 = traceBlock(7, 47);
    expect(a).toBe(`${block46} ${block47}`);
    expect(b.startsWith(`${block46} ${block47} `)).toBe(true);
    expect(block46).not.toBe(block47);
    expect(traceBlock(7, 46)).not.toBe(traceBlock(8, 46)); // the seed counts too
  });

  it("cuts the last block to the tokens that remain, as AIPerf does, keeping it a prefix of the whole block", () => {
    const j = jobForItem(W, 0, { inputLength: 655, outputLength: 52, hashIds: [46, 47] });
    expect(j.prompt).toBe(`${traceBlock(7, 46)} ${traceBlock(7, 47).split(" ").slice(0, 143).join(" ")}`);
    expect(j).toMatchObject({ inputTokens: 655, outputTokens: 52 });
    for (const name of TOKENIZERS) expect(countTokens(j.prompt, name)).toBe(655);
  });

  it("fills up to the input length with seeded words where the blocks are too few, and cuts where they are too many", () => {
    const long = jobForItem(W, 5, { inputLength: 700, hashIds: [1] });
    expect(long.prompt.startsWith(`${traceBlock(7, 1)} `)).toBe(true);
    expect(long.prompt).toBe(jobForItem(W, 5, { inputLength: 700, hashIds: [1] }).prompt);
    const short = jobForItem(W, 5, { inputLength: 10, hashIds: [1, 2, 3] });
    expect(short.prompt).toBe(traceBlock(7, 1).split(" ").slice(0, 10).join(" "));
    for (const name of TOKENIZERS) {
      expect(countTokens(long.prompt, name)).toBe(700);
      expect(countTokens(short.prompt, name)).toBe(10);
    }
  });

  it("uses whole blocks without an input length, and only filler without hash ids", () => {
    const blocks = jobForItem(W, 0, { hashIds: [3, 4] });
    expect(blocks).toMatchObject({ inputTokens: 1024, prompt: `${traceBlock(7, 3)} ${traceBlock(7, 4)}` });
    const filler = jobForItem(W, 0, { inputLength: 33 });
    expect(filler.inputTokens).toBe(33);
    expect(countTokens(filler.prompt)).toBe(33);
    expect(() => jobForItem(W, 0, {})).toThrow("inputLength");
  });
});
