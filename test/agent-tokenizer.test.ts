// The agent's tokenizer: gpt-tokenizer's encodings, counted in segments so that no text
// can make BPE quadratic, and exactly as one piece for ordinary text.
import { encode as cl100k } from "gpt-tokenizer/encoding/cl100k_base";
import { encode as o200k } from "gpt-tokenizer/encoding/o200k_base";
import readme from "../README.md?raw";
import { describe, expect, it } from "vitest";
import { countTokens } from "../contract/tokenizer";
import targetSource from "../agent/target.ts?raw";

const whole = { cl100k_base: cl100k, o200k_base: o200k } as const;
const AS_TEXT = { disallowedSpecial: new Set<string>() };

describe("countTokens", () => {
  it("counts ordinary text, code and mixed scripts exactly as the encoding does in one piece", () => {
    const texts = [readme, targetSource, "a  b\r\n c\t\td " + "é ü 中文 字 ".repeat(200), " leading and trailing spaces  "];
    for (const name of ["cl100k_base", "o200k_base"] as const) {
      for (const text of texts) expect(countTokens(text, name), name).toBe(whole[name](text, AS_TEXT).length);
    }
  });

  it("uses cl100k_base by default and counts an empty text as 0", () => {
    expect(countTokens("hello world")).toBe(cl100k("hello world").length);
    expect(countTokens("")).toBe(0);
  });

  it("counts special-token text such as <|endoftext|> as the text it is instead of refusing it", () => {
    expect(countTokens("a <|endoftext|> b")).toBeGreaterThan(3);
  });

  it("counts a megabyte without a space in well under a second, where one piece would take minutes", () => {
    const t0 = performance.now();
    const n = countTokens("x".repeat(1_000_000));
    expect(performance.now() - t0).toBeLessThan(1_000);
    // Off by at most one token per 256-character segment from a count in one piece (125,000).
    expect(Math.abs(n - 125_000)).toBeLessThanOrEqual(1_000_000 / 256);
  });
});
