// The CLI's flags for endpoint kinds and the tokenizer, mapped to the RunSpec (AIPerf's
// --endpoint-type and --tokenizer names).
import { describe, expect, it } from "vitest";
import { buildSpec, parseFlags, SPEC_FLAGS } from "../../cli/args.ts";
import { UsageError } from "../../cli/errors.ts";

const spec = (argv: string[], base?: Record<string, unknown>) =>
  buildSpec(parseFlags(argv, SPEC_FLAGS, { min: 0, max: 0, names: "" }).values, base);

describe("--endpoint-type and --tokenizer", () => {
  it("map AIPerf's endpoint types to target.api, the new kinds under their own names", () => {
    for (const [type, api] of [
      ["chat", "openai-chat"],
      ["completions", "openai-completions"],
      ["embeddings", "embeddings"],
      ["responses", "responses"],
      ["messages", "messages"],
      ["template", "template"],
      ["http", "http"],
    ]) {
      expect(spec(["--endpoint-type", type!]).target, type).toEqual({ api });
    }
  });

  it("sets target.tokenizer, leaving its check to the server, and keeps a --spec file's template", () => {
    const template = { body: { q: "{{prompt}}" }, textPath: "a" };
    expect(
      spec(["--endpoint-type", "template", "--tokenizer", "o200k_base"], { target: { url: "https://x.example.com", template } }),
    ).toEqual({
      target: { url: "https://x.example.com", api: "template", tokenizer: "o200k_base", template },
    });
  });

  it("refuses an unknown endpoint type as a usage error that lists the choices", () => {
    expect(() => spec(["--endpoint-type", "anthropic"])).toThrow(UsageError);
    expect(() => spec(["--endpoint-type", "anthropic"])).toThrow(/chat, completions, embeddings, responses, messages, template or http/);
  });
});
