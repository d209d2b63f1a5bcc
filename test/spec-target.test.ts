// RunSpec's target for every endpoint kind: the new APIs, the template, the tokenizer and
// the mock's reasoning and tool-call knobs, each refused at the door with a message that
// names the field.
import { describe, expect, it } from "vitest";
import { readConfig } from "../contract/config";
import { StatusError } from "../contract/errors";
import { parseRunSpec, publicSpec } from "../contract/spec";

const cfg = readConfig({ ALLOWED_TARGETS: "api.example.org" });
const URL = "https://api.example.org/v1/x";
const TEMPLATE = { body: { input: "{{prompt}}", n: "{{max_tokens}}" }, textPath: "output.text" };

const parse = (target: Record<string, unknown>, rest: Record<string, unknown> = {}) =>
  parseRunSpec({ target, stop: { requests: 1 }, ...rest }, cfg);

function refusal(target: Record<string, unknown>): StatusError {
  try {
    parse(target);
  } catch (e) {
    if (e instanceof StatusError) return e;
    throw e;
  }
  throw new Error("the spec was accepted");
}

describe("target.api", () => {
  it("accepts embeddings, responses, messages and template besides the OpenAI APIs and http", () => {
    for (const api of ["embeddings", "responses", "messages"]) expect(parse({ url: URL, api, model: "m" }).target.api).toBe(api);
    expect(parse({ url: URL, api: "template", template: TEMPLATE }).target.api).toBe("template");
  });

  it("names every choice when refusing an unknown one", () => {
    const e = refusal({ url: URL, api: "anthropic", model: "m" });
    expect(e.message).toBe(
      'target.api must be one of "openai-chat", "openai-completions", "http", "embeddings", "responses", "messages", "template".',
    );
  });

  it("refuses streaming with embeddings, which answer one JSON body", () => {
    expect(refusal({ url: URL, api: "embeddings", model: "m", stream: true }).message).toBe(
      'target.stream is not supported with api "embeddings".',
    );
  });

  it("still requires a model for the new APIs outside the mock, and gives the mock's 'mock'", () => {
    expect(refusal({ url: URL, api: "messages" }).message).toBe('target.model is required for api "messages".');
    expect(parse({ url: "builtin:mock", api: "responses" }).target.model).toBe("mock");
  });
});

describe("target.template", () => {
  it("is stored as given, with its optional paths", () => {
    const template = { ...TEMPLATE, streamTextPath: "token.text", usagePath: "meta.usage" };
    expect(parse({ url: URL, api: "template", template }).target.template).toEqual(template);
  });

  it("is required with api template and refused with any other", () => {
    expect(refusal({ url: URL, api: "template" }).message).toBe('target.template is required for api "template".');
    expect(refusal({ url: URL, model: "m", template: TEMPLATE }).message).toBe('target.template is only allowed with api "template".');
  });

  it("needs a model only when the body uses {{model}}", () => {
    expect(parse({ url: URL, api: "template", template: TEMPLATE }).target.model).toBeUndefined();
    const withModel = { ...TEMPLATE, body: { ...TEMPLATE.body, model: "{{model}}" } };
    expect(refusal({ url: URL, api: "template", template: withModel }).message).toBe(
      "target.model is required: target.template.body uses {{model}}.",
    );
  });

  it("refuses a body without {{prompt}}, and a placeholder it does not know, without echoing it", () => {
    expect(refusal({ url: URL, api: "template", template: { ...TEMPLATE, body: { q: "fixed" } } }).message).toBe(
      "target.template.body must use {{prompt}} somewhere, or no prompt is ever sent.",
    );
    const e = refusal({ url: URL, api: "template", template: { ...TEMPLATE, body: { q: "{{prompt}}", k: "{{secret_key}}" } } });
    expect(e.message).toBe("target.template.body uses a placeholder other than {{prompt}}, {{max_tokens}} and {{model}}.");
    expect(e.message).not.toContain("secret_key");
  });

  it("refuses a body nested deeper than 32 levels or larger than 256 KiB as out of range", () => {
    let deep: unknown = "{{prompt}}";
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const nested = refusal({ url: URL, api: "template", template: { ...TEMPLATE, body: deep } });
    expect([nested.status, nested.code, nested.message]).toEqual([
      422,
      "out_of_range",
      "target.template.body must nest at most 32 levels deep.",
    ]);
    const big = refusal({ url: URL, api: "template", template: { ...TEMPLATE, body: { q: "{{prompt}}", pad: "x".repeat(256 * 1024) } } });
    expect([big.status, big.message]).toEqual([422, "target.template.body must be at most 262144 bytes as JSON."]);
  });

  it("refuses a path that is not dotted keys and indexes", () => {
    for (const textPath of ["", "a..b", "choices[0].text", `a${".b".repeat(16)}`]) {
      expect(refusal({ url: URL, api: "template", template: { ...TEMPLATE, textPath } }).message, textPath).toMatch(
        /^target\.template\.textPath /,
      );
    }
  });

  it("is redacted in the public spec, like api http's body: some APIs take their key in it", () => {
    const spec = parse({ url: URL, api: "template", template: { ...TEMPLATE, body: { key: "SECRET", q: "{{prompt}}" } } });
    const shown = publicSpec(spec);
    expect(shown.target).toMatchObject({ template: { body: "REDACTED", textPath: "output.text" } });
    expect(JSON.stringify(shown)).not.toContain("SECRET");
  });
});

describe("target.tokenizer", () => {
  it("accepts the encodings edgeperf ships and is absent unless given", () => {
    expect(parse({ url: URL, model: "m", tokenizer: "o200k_base" }).target.tokenizer).toBe("o200k_base");
    expect(parse({ url: URL, model: "m" }).target).not.toHaveProperty("tokenizer");
  });

  it("refuses another name, listing the choices, and any tokenizer with api http", () => {
    expect(refusal({ url: URL, model: "m", tokenizer: "llama3" }).message).toBe(
      'target.tokenizer must be one of "cl100k_base", "o200k_base".',
    );
    expect(refusal({ url: URL, api: "http", tokenizer: "cl100k_base" }).message).toBe(
      'target.tokenizer is not used with api "http", which counts no tokens.',
    );
  });
});

describe("target.mock's reasoning and tool-call knobs", () => {
  it("are kept when given and absent when not, so older specs parse as before", () => {
    expect(parse({ url: "builtin:mock", mock: { reasoningTokens: 20, toolCalls: true } }).target.mock).toEqual({
      ttftMs: 20,
      itlMs: 5,
      errorRate: 0,
      reasoningTokens: 20,
      toolCalls: true,
    });
    expect(parse({ url: "builtin:mock" }).target.mock).toEqual({ ttftMs: 20, itlMs: 5, errorRate: 0 });
  });

  it("refuse a reasoning count outside 0 to 4096 or not whole, and a toolCalls that is not a boolean", () => {
    expect(refusal({ url: "builtin:mock", mock: { reasoningTokens: 4097 } }).message).toBe(
      "target.mock.reasoningTokens must be an integer from 0 to 4096.",
    );
    expect(refusal({ url: "builtin:mock", mock: { reasoningTokens: 1.5 } }).message).toBe(
      "target.mock.reasoningTokens must be an integer from 0 to 4096.",
    );
    expect(refusal({ url: "builtin:mock", mock: { toolCalls: 1 } }).message).toBe("target.mock.toolCalls must be a boolean.");
  });
});

describe("thresholds on the new metrics", () => {
  it("accept TTFO, TTST, reasoning tokens and total token throughput, like every metric of the catalog", () => {
    const thresholds = {
      "time_to_first_output_token.p99": "<900",
      "time_to_second_token.avg": "<20",
      "reasoning_token_count.max": "<=4096",
      total_token_throughput: ">100",
    };
    expect(Object.keys(parse({ url: "builtin:mock" }, { thresholds }).thresholds ?? {})).toEqual(Object.keys(thresholds));
  });
});
