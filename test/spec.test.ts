import { describe, expect, it } from "vitest";
import { readConfig } from "../contract/config";
import { StatusError } from "../contract/errors";
import { parseRunSpec, parseThreshold, publicSpec } from "../contract/spec";
import { DISTRIBUTION_TAGS as DISTRIBUTION_METRICS } from "../contract/metric-catalog";
import { THRESHOLD_STATS } from "../contract/thresholds";

const cfg = readConfig({
  ALLOWED_TARGETS: "api.example.org,*.example.com,127.0.0.1:*",
  POST_COMPLETE_GRACE_SECONDS: "7",
  MAX_CONCURRENCY: "100",
  MAX_RATE: "50",
  MAX_REQUESTS: "1000",
  MAX_DURATION_SECONDS: "600",
  MAX_AGENTS: "4",
});

type Body = Record<string, unknown>;
const DS = `ds_${"0123456789abcdef".repeat(4)}`;
const MOCK = { target: { url: "builtin:mock" }, stop: { requests: 10 } };
const REMOTE_URL = "https://api.example.org/v1/chat/completions";
const REMOTE = { target: { url: REMOTE_URL, model: "m" }, stop: { requests: 10 } };

// The mock spec with some top-level fields replaced.
const spec = (rest: Body): Body => ({ ...MOCK, ...rest });
// The mock spec with some target fields replaced.
const target = (fields: Body): Body => ({ ...MOCK, target: { ...MOCK.target, ...fields } });
const remote = (fields: Body): Body => ({ ...REMOTE, target: { ...REMOTE.target, ...fields } });
const headers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, "v"]));
const thresholdKeys = DISTRIBUTION_METRICS.flatMap((m) => THRESHOLD_STATS.map((s) => `${m}.${s}`));
const thresholds = (n: number) => Object.fromEntries(thresholdKeys.slice(0, n).map((k) => [k, "<1"]));

function refusal(body: unknown): StatusError {
  try {
    parseRunSpec(body, cfg);
  } catch (e) {
    if (e instanceof StatusError) return e;
    throw e;
  }
  throw new Error("the spec was accepted");
}

describe("parseRunSpec: defaults", () => {
  it("fills every default into a minimal mock spec", () => {
    expect(parseRunSpec(MOCK, cfg)).toEqual({
      target: {
        url: "builtin:mock",
        api: "openai-chat",
        model: "mock",
        stream: false,
        headers: {},
        timeoutSeconds: 600,
        mock: { ttftMs: 20, itlMs: 5, errorRate: 0 },
      },
      workload: { inputTokens: { mean: 550, stddev: 0 }, outputTokens: { mean: 128, stddev: 0 }, seed: 0 },
      load: { concurrency: 1 },
      stop: { requests: 10 },
      warmup: { requests: 0 },
      drainTimeoutSeconds: 30,
      agentTimeoutSeconds: 300,
      timesliceSeconds: 1,
      graceSeconds: 7,
      abortOnThresholdFail: false,
    });
  });

  it("takes the graceSeconds default from the Config", () => {
    expect(parseRunSpec(MOCK, readConfig({})).graceSeconds).toBe(5);
  });

  it("always allows builtin:mock, even with an empty allowlist", () => {
    expect(parseRunSpec(MOCK, readConfig({})).target.url).toBe("builtin:mock");
  });

  it("fills nested defaults inside a partly given workload", () => {
    const w = parseRunSpec(spec({ workload: { inputTokens: { mean: 100 } } }), cfg).workload;
    expect(w).toEqual({ inputTokens: { mean: 100, stddev: 0 }, outputTokens: { mean: 128, stddev: 0 }, seed: 0 });
  });

  it("stores a remote target's normalized URL and gives it no mock settings", () => {
    const t = parseRunSpec(remote({ url: "https://API.example.org/v1" }), cfg).target;
    expect(t.url).toBe("https://api.example.org/v1");
    expect(t.mock).toBeUndefined();
  });
});

// Each row: a full-sentence name, a spec, and what parseRunSpec makes of one part of it.
const ACCEPTED: { name: string; body: Body; part: (s: ReturnType<typeof parseRunSpec>) => unknown; expected: unknown }[] = [
  { name: "keeps an explicit graceSeconds of 0", body: spec({ graceSeconds: 0 }), part: (s) => s.graceSeconds, expected: 0 },
  { name: "accepts graceSeconds of 300", body: spec({ graceSeconds: 300 }), part: (s) => s.graceSeconds, expected: 300 },
  { name: "leaves agents undefined when not given", body: MOCK, part: (s) => s.agents, expected: undefined },
  {
    name: "leaves agents.edge undefined when only regions are given",
    body: spec({ agents: { regions: ["weur", "apac"] } }),
    part: (s) => s.agents,
    expected: { regions: ["weur", "apac"] },
  },
  {
    name: "accepts agents.edge 0 for external agents only",
    body: spec({ agents: { edge: 0 } }),
    part: (s) => s.agents,
    expected: { edge: 0 },
  },
  {
    name: "fills target.mock defaults around a given fractional value",
    body: target({ mock: { ttftMs: 1.5 } }),
    part: (s) => s.target.mock,
    expected: { ttftMs: 1.5, itlMs: 5, errorRate: 0 },
  },
  {
    name: "does not require a model for api http",
    body: remote({ model: undefined, api: "http" }),
    part: (s) => s.target.model,
    expected: undefined,
  },
  {
    name: "accepts a model of 256 characters",
    body: target({ model: "m".repeat(256) }),
    part: (s) => s.target.model,
    expected: "m".repeat(256),
  },
  { name: "defaults method to GET for api http", body: target({ api: "http" }), part: (s) => s.target.method, expected: "GET" },
  {
    name: "accepts a body with method POST",
    body: target({ api: "http", method: "POST", body: "{}" }),
    part: (s) => [s.target.method, s.target.body],
    expected: ["POST", "{}"],
  },
  { name: "accepts an apiKey", body: target({ apiKey: "sk-ok" }), part: (s) => s.target.apiKey, expected: "sk-ok" },
  {
    name: "accepts ordinary headers",
    body: target({ headers: { "x-extra": "1", Authorization: "Bearer t" } }),
    part: (s) => s.target.headers,
    expected: { "x-extra": "1", Authorization: "Bearer t" },
  },
  { name: "accepts 64 headers", body: target({ headers: headers(64) }), part: (s) => Object.keys(s.target.headers).length, expected: 64 },
  {
    name: "accepts a header value of 8 KiB",
    body: target({ headers: { "x-a": "v".repeat(8192) } }),
    part: (s) => s.target.headers["x-a"]?.length,
    expected: 8192,
  },
  {
    name: "accepts a token mean of 1",
    body: spec({ workload: { outputTokens: { mean: 1 } } }),
    part: (s) => s.workload.outputTokens.mean,
    expected: 1,
  },
  {
    name: "accepts a token mean of 131072",
    body: spec({ workload: { inputTokens: { mean: 131_072 } } }),
    part: (s) => s.workload.inputTokens.mean,
    expected: 131_072,
  },
  {
    name: "accepts a seed of 2^32-1",
    body: spec({ workload: { seed: 2 ** 32 - 1 } }),
    part: (s) => s.workload.seed,
    expected: 2 ** 32 - 1,
  },
  { name: "accepts concurrency mode", body: spec({ load: { concurrency: 8 } }), part: (s) => s.load, expected: { concurrency: 8 } },
  {
    name: "accepts rate mode with constant arrival by default",
    body: spec({ load: { rate: 2.5 } }),
    part: (s) => s.load,
    expected: { rate: 2.5, arrival: "constant" },
  },
  {
    name: "accepts rate mode with poisson arrival and maxConcurrency",
    body: spec({ load: { rate: 20, arrival: "poisson", maxConcurrency: 64 } }),
    part: (s) => s.load,
    expected: { rate: 20, arrival: "poisson", maxConcurrency: 64 },
  },
  {
    name: "accepts a duration as the only stop condition",
    body: spec({ stop: { durationSeconds: 0.5 } }),
    part: (s) => s.stop,
    expected: { durationSeconds: 0.5 },
  },
  {
    name: "accepts both stop conditions",
    body: spec({ stop: { requests: 5, durationSeconds: 60 } }),
    part: (s) => s.stop,
    expected: { requests: 5, durationSeconds: 60 },
  },
  { name: "accepts warmup requests", body: spec({ warmup: { requests: 3 } }), part: (s) => s.warmup, expected: { requests: 3 } },
  { name: "accepts a drainTimeoutSeconds of 0", body: spec({ drainTimeoutSeconds: 0 }), part: (s) => s.drainTimeoutSeconds, expected: 0 },
  {
    name: "accepts abortOnThresholdFail true",
    body: spec({ abortOnThresholdFail: true }),
    part: (s) => s.abortOnThresholdFail,
    expected: true,
  },
  {
    name: "keeps valid thresholds as written",
    body: spec({ thresholds: { "time_to_first_token.p99": "<500", request_error_rate: "<= 1" } }),
    part: (s) => s.thresholds,
    expected: { "time_to_first_token.p99": "<500", request_error_rate: "<= 1" },
  },
  {
    name: "accepts 32 thresholds",
    body: spec({ thresholds: thresholds(32) }),
    part: (s) => Object.keys(s.thresholds ?? {}).length,
    expected: 32,
  },
  {
    name: "accepts an allowed notify URL",
    body: spec({ notify: { url: "https://ci.example.com/hooks/edgeperf" } }),
    part: (s) => s.notify,
    expected: { url: "https://ci.example.com/hooks/edgeperf" },
  },
  {
    name: "accepts values exactly at the caps",
    body: spec({ load: { concurrency: 100 }, stop: { requests: 1000, durationSeconds: 600 }, agents: { edge: 4 } }),
    part: (s) => s.stop.requests,
    expected: 1000,
  },
  {
    name: "accepts the slowest rate allowed, 0.001 requests/s",
    body: spec({ load: { rate: 0.001 } }),
    part: (s) => s.load,
    expected: { rate: 0.001, arrival: "constant" },
  },
  {
    name: "accepts the shortest duration allowed, one millisecond",
    body: spec({ stop: { durationSeconds: 0.001 } }),
    part: (s) => s.stop,
    expected: { durationSeconds: 0.001 },
  },
  {
    name: "accepts a token stddev as wide as the largest mean",
    body: spec({ workload: { inputTokens: { stddev: 131_072 } } }),
    part: (s) => s.workload.inputTokens,
    expected: { mean: 550, stddev: 131_072 },
  },
  {
    name: "keeps a header named constructor: only __proto__ would vanish from a record",
    body: target({ headers: JSON.parse('{"constructor":"1","prototype":"2"}') }),
    part: (s) => s.target.headers,
    expected: { constructor: "1", prototype: "2" },
  },
  {
    name: "accepts a rate and maxConcurrency exactly at the caps",
    body: spec({ load: { rate: 50, maxConcurrency: 100 } }),
    part: (s) => s.load,
    expected: { rate: 50, arrival: "constant", maxConcurrency: 100 },
  },
  {
    name: "defaults a dataset's sampling to sequential",
    body: spec({ workload: { dataset: { id: DS } } }),
    part: (s) => s.workload.dataset,
    expected: { id: DS, sampling: "sequential" },
  },
  {
    name: "accepts each sampling of a dataset",
    body: spec({ workload: { dataset: { id: DS, sampling: "shuffle" } } }),
    part: (s) => s.workload.dataset?.sampling,
    expected: "shuffle",
  },
  {
    name: "accepts a dataset with api embeddings, which takes text",
    body: { ...target({ api: "embeddings" }), workload: { dataset: { id: DS } } },
    part: (s) => [s.target.api, s.workload.dataset?.id],
    expected: ["embeddings", DS],
  },
  {
    name: "accepts a replaySpeedup with a dataset, keeping it as given",
    body: spec({ workload: { dataset: { id: DS, sampling: "sequential" }, replaySpeedup: 2.5 } }),
    part: (s) => s.workload.replaySpeedup,
    expected: 2.5,
  },
  {
    name: "accepts a shared prefix and leaves the input tokens as drawn after it",
    body: spec({ workload: { sharedPrefix: { tokens: 100, prompts: 4 }, inputTokens: { mean: 50 } } }),
    part: (s) => [s.workload.sharedPrefix, s.workload.inputTokens],
    expected: [
      { tokens: 100, prompts: 4 },
      { mean: 50, stddev: 0 },
    ],
  },
  {
    name: "adds no dataset, sharedPrefix or replaySpeedup to a workload that does not give them",
    body: spec({ workload: { seed: 3 } }),
    part: (s) => Object.keys(s.workload).sort(),
    expected: ["inputTokens", "outputTokens", "seed"],
  },
];

describe("parseRunSpec: accepted specs", () => {
  it.each(ACCEPTED)("$name", ({ body, part, expected }) => {
    expect(part(parseRunSpec(body, cfg))).toEqual(expected);
  });
});

// Each row: a full-sentence name, a spec, the status and code it gets, and a word the message must contain.
const REFUSED: { name: string; body: unknown; status: number; code: string; mentions: string }[] = [
  { name: "refuses null as a body", body: null, status: 400, code: "invalid_spec", mentions: "JSON object" },
  { name: "refuses an array as a body", body: [MOCK], status: 400, code: "invalid_spec", mentions: "JSON object" },
  {
    name: "refuses an unknown top-level field, naming it",
    body: spec({ extra: 1 }),
    status: 400,
    code: "unknown_field",
    mentions: "extra",
  },
  {
    name: "refuses an unknown target field with its full path",
    body: target({ foo: 1 }),
    status: 400,
    code: "unknown_field",
    mentions: "target.foo",
  },
  {
    name: "refuses a deeply nested unknown field with its full path",
    body: spec({ workload: { inputTokens: { median: 5 } } }),
    status: 400,
    code: "unknown_field",
    mentions: "workload.inputTokens.median",
  },
  {
    name: "refuses an unknown field inside notify",
    body: spec({ notify: { url: "https://ci.example.com/", method: "PUT" } }),
    status: 400,
    code: "unknown_field",
    mentions: "notify.method",
  },
  {
    name: "refuses a missing target, saying it is required",
    body: { stop: { requests: 1 } },
    status: 400,
    code: "invalid_spec",
    mentions: "target is required",
  },
  {
    name: "refuses a wrong type, naming the path",
    body: target({ stream: "yes" }),
    status: 400,
    code: "invalid_spec",
    mentions: "target.stream",
  },
  {
    name: "refuses an unknown api, listing the choices",
    body: target({ api: "anthropic" }),
    status: 400,
    code: "invalid_spec",
    mentions: '"openai-chat"',
  },
  {
    name: "refuses a fraction where an integer is expected with 400",
    body: spec({ load: { concurrency: 1.5 } }),
    status: 400,
    code: "invalid_spec",
    mentions: "load.concurrency",
  },
  {
    name: "refuses a fractional graceSeconds with 400",
    body: spec({ graceSeconds: 1.5 }),
    status: 400,
    code: "invalid_spec",
    mentions: "graceSeconds",
  },
  {
    name: "refuses an out-of-range value with 422, naming the allowed range",
    body: target({ timeoutSeconds: 0 }),
    status: 422,
    code: "out_of_range",
    mentions: "target.timeoutSeconds must be a number from 1 to 3600",
  },
  {
    name: "refuses timeoutSeconds above 3600",
    body: target({ timeoutSeconds: 3601 }),
    status: 422,
    code: "out_of_range",
    mentions: "target.timeoutSeconds",
  },
  {
    name: "refuses a target outside the allowlist with 403, naming the host",
    body: remote({ url: "https://evil.test/v1" }),
    status: 403,
    code: "target_not_allowed",
    mentions: "evil.test",
  },
  {
    name: "refuses a non-http target scheme",
    body: remote({ url: "ftp://api.example.org/" }),
    status: 400,
    code: "invalid_target",
    mentions: "target.url",
  },
  {
    name: "refuses target.mock with a remote target",
    body: remote({ mock: { ttftMs: 1 } }),
    status: 400,
    code: "invalid_spec",
    mentions: "target.mock",
  },
  {
    name: "refuses an errorRate above 1",
    body: target({ mock: { errorRate: 1.5 } }),
    status: 422,
    code: "out_of_range",
    mentions: "target.mock.errorRate",
  },
  {
    name: "refuses a ttftMs above 60000",
    body: target({ mock: { ttftMs: 60_001 } }),
    status: 422,
    code: "out_of_range",
    mentions: "target.mock.ttftMs",
  },
  {
    name: "refuses a negative itlMs",
    body: target({ mock: { itlMs: -1 } }),
    status: 422,
    code: "out_of_range",
    mentions: "target.mock.itlMs",
  },
  {
    name: "requires a model for an OpenAI api with a remote target",
    body: remote({ model: undefined }),
    status: 400,
    code: "invalid_spec",
    mentions: "target.model",
  },
  { name: "refuses an empty model", body: target({ model: "" }), status: 422, code: "out_of_range", mentions: "target.model" },
  {
    name: "refuses a model longer than 256 characters",
    body: target({ model: "m".repeat(257) }),
    status: 422,
    code: "out_of_range",
    mentions: "target.model",
  },
  {
    name: "refuses method with an OpenAI api",
    body: target({ method: "POST" }),
    status: 400,
    code: "invalid_spec",
    mentions: "target.method",
  },
  { name: "refuses body with an OpenAI api", body: target({ body: "x" }), status: 400, code: "invalid_spec", mentions: "target.body" },
  {
    name: "refuses a body with method GET",
    body: target({ api: "http", body: "x" }),
    status: 400,
    code: "invalid_spec",
    mentions: "target.body",
  },
  {
    name: "refuses a body larger than 256 KiB",
    body: target({ api: "http", method: "POST", body: "x".repeat(256 * 1024 + 1) }),
    status: 422,
    code: "out_of_range",
    mentions: "target.body",
  },
  {
    name: "refuses an unknown method",
    body: target({ api: "http", method: "TRACE" }),
    status: 400,
    code: "invalid_spec",
    mentions: "target.method",
  },
  {
    name: "refuses an apiKey with CR or LF",
    body: target({ apiKey: "sk-1\r\nX: y" }),
    status: 400,
    code: "invalid_spec",
    mentions: "target.apiKey",
  },
  {
    name: "refuses an apiKey longer than 4096 characters",
    body: target({ apiKey: "k".repeat(4097) }),
    status: 422,
    code: "out_of_range",
    mentions: "target.apiKey",
  },
  {
    name: "refuses CRLF in a header value",
    body: target({ headers: { "x-a": "v\r\nInjected: 1" } }),
    status: 400,
    code: "invalid_header",
    mentions: "target.headers.x-a",
  },
  {
    name: "refuses a bare LF in a header value",
    body: target({ headers: { "x-a": "a\nb" } }),
    status: 400,
    code: "invalid_header",
    mentions: "CR, LF or NUL",
  },
  {
    name: "refuses NUL in a header value",
    body: target({ headers: { "x-a": "a\0b" } }),
    status: 400,
    code: "invalid_header",
    mentions: "CR, LF or NUL",
  },
  {
    name: "refuses CRLF in a header name",
    body: target({ headers: { "x-a\r\nInjected": "1" } }),
    status: 400,
    code: "invalid_header",
    mentions: "CR, LF or NUL",
  },
  {
    name: "refuses a header name with a space",
    body: target({ headers: { "x a": "1" } }),
    status: 400,
    code: "invalid_header",
    mentions: "token",
  },
  {
    name: "refuses a header name with a colon",
    body: target({ headers: { "x:a": "1" } }),
    status: 400,
    code: "invalid_header",
    mentions: "token",
  },
  ...["Host", "connection", "Keep-Alive", "proxy-connection", "Transfer-Encoding", "upgrade", "TE", "trailer", "Content-Length"].map(
    (h) => ({
      name: `refuses the hop-by-hop or Host header ${h}`,
      body: target({ headers: { [h]: "x" } }),
      status: 400,
      code: "invalid_header",
      mentions: "hop-by-hop",
    }),
  ),
  {
    name: "refuses the same header name twice in different case",
    body: target({ headers: { "X-A": "1", "x-a": "2" } }),
    status: 400,
    code: "invalid_header",
    mentions: "twice",
  },
  {
    name: "refuses a non-string header value",
    body: target({ headers: { "x-a": 1 } }),
    status: 400,
    code: "invalid_spec",
    mentions: "target.headers.x-a",
  },
  { name: "refuses 65 headers", body: target({ headers: headers(65) }), status: 422, code: "out_of_range", mentions: "target.headers" },
  {
    name: "refuses a header value longer than 8 KiB",
    body: target({ headers: { "x-a": "v".repeat(8193) } }),
    status: 422,
    code: "out_of_range",
    mentions: "target.headers.x-a",
  },
  {
    name: "refuses a token mean of 0",
    body: spec({ workload: { outputTokens: { mean: 0 } } }),
    status: 422,
    code: "out_of_range",
    mentions: "workload.outputTokens.mean",
  },
  {
    name: "refuses a token mean of 131073",
    body: spec({ workload: { outputTokens: { mean: 131_073 } } }),
    status: 422,
    code: "out_of_range",
    mentions: "workload.outputTokens.mean",
  },
  {
    name: "refuses a negative stddev",
    body: spec({ workload: { inputTokens: { stddev: -1 } } }),
    status: 422,
    code: "out_of_range",
    mentions: "workload.inputTokens.stddev",
  },
  {
    name: "refuses a seed of 2^32",
    body: spec({ workload: { seed: 2 ** 32 } }),
    status: 422,
    code: "out_of_range",
    mentions: "workload.seed",
  },
  {
    name: "refuses both concurrency and rate",
    body: spec({ load: { concurrency: 1, rate: 1 } }),
    status: 400,
    code: "invalid_spec",
    mentions: "not both",
  },
  {
    name: "refuses a load with neither concurrency nor rate",
    body: spec({ load: {} }),
    status: 400,
    code: "invalid_spec",
    mentions: "concurrency or rate",
  },
  {
    name: "refuses arrival with concurrency",
    body: spec({ load: { concurrency: 1, arrival: "poisson" } }),
    status: 400,
    code: "invalid_spec",
    mentions: "load.arrival",
  },
  {
    name: "refuses maxConcurrency with concurrency",
    body: spec({ load: { concurrency: 1, maxConcurrency: 2 } }),
    status: 400,
    code: "invalid_spec",
    mentions: "load.maxConcurrency",
  },
  { name: "refuses a rate of 0", body: spec({ load: { rate: 0 } }), status: 422, code: "out_of_range", mentions: "load.rate" },
  {
    name: "refuses the smallest positive double as a rate, whose next slot would be Infinity",
    body: spec({ load: { rate: 5e-324 } }),
    status: 422,
    code: "out_of_range",
    mentions: "load.rate must be a number >= 0.001",
  },
  {
    name: "refuses a rate just under one request per 1000 seconds",
    body: spec({ load: { rate: 0.000999 } }),
    status: 422,
    code: "out_of_range",
    mentions: "load.rate must be a number >= 0.001",
  },
  {
    name: "refuses a duration that would round to zero milliseconds",
    body: spec({ stop: { durationSeconds: 1e-7 } }),
    status: 422,
    code: "out_of_range",
    mentions: "stop.durationSeconds must be a number >= 0.001",
  },
  {
    name: "refuses a token stddev wider than the largest mean",
    body: spec({ workload: { outputTokens: { stddev: 1e308 } } }),
    status: 422,
    code: "out_of_range",
    mentions: "workload.outputTokens.stddev must be a number from 0 to 131072",
  },
  {
    name: "refuses __proto__ as a threshold key instead of dropping it, naming the path",
    body: spec({ thresholds: JSON.parse('{"__proto__":"<5"}') }),
    status: 400,
    code: "unknown_field",
    mentions: "thresholds.__proto__",
  },
  {
    name: "refuses __proto__ as a target header name instead of dropping it, naming the path",
    body: target({ headers: JSON.parse('{"x-a":"1","__proto__":"2"}') }),
    status: 400,
    code: "unknown_field",
    mentions: "target.headers.__proto__",
  },
  {
    name: "refuses __proto__ at the top of a spec",
    body: JSON.parse('{"target":{"url":"builtin:mock"},"stop":{"requests":1},"__proto__":{"graceSeconds":0}}'),
    status: 400,
    code: "unknown_field",
    mentions: "__proto__ is not allowed",
  },
  {
    name: "refuses __proto__ inside an array, naming the index",
    body: spec({ agents: { regions: JSON.parse('["weur",{"__proto__":1}]') } }),
    status: 400,
    code: "unknown_field",
    mentions: "agents.regions[1].__proto__",
  },
  {
    name: "refuses a concurrency of 0",
    body: spec({ load: { concurrency: 0 } }),
    status: 422,
    code: "out_of_range",
    mentions: "load.concurrency",
  },
  {
    name: "refuses an unknown arrival",
    body: spec({ load: { rate: 1, arrival: "burst" } }),
    status: 400,
    code: "invalid_spec",
    mentions: "load.arrival",
  },
  { name: "refuses a spec without stop", body: { target: MOCK.target }, status: 400, code: "no_stop_condition", mentions: "stop" },
  { name: "refuses an empty stop", body: spec({ stop: {} }), status: 400, code: "no_stop_condition", mentions: "stop" },
  {
    name: "refuses zero stop requests",
    body: spec({ stop: { requests: 0 } }),
    status: 422,
    code: "out_of_range",
    mentions: "stop.requests",
  },
  {
    name: "refuses a zero duration",
    body: spec({ stop: { durationSeconds: 0 } }),
    status: 422,
    code: "out_of_range",
    mentions: "stop.durationSeconds",
  },
  {
    name: "refuses negative warmup requests",
    body: spec({ warmup: { requests: -1 } }),
    status: 422,
    code: "out_of_range",
    mentions: "warmup.requests",
  },
  {
    name: "refuses a drainTimeoutSeconds above 3600",
    body: spec({ drainTimeoutSeconds: 3600.5 }),
    status: 422,
    code: "out_of_range",
    mentions: "drainTimeoutSeconds",
  },
  { name: "refuses a graceSeconds of 301", body: spec({ graceSeconds: 301 }), status: 422, code: "out_of_range", mentions: "graceSeconds" },
  {
    name: "refuses a non-boolean abortOnThresholdFail",
    body: spec({ abortOnThresholdFail: "true" }),
    status: 400,
    code: "invalid_spec",
    mentions: "abortOnThresholdFail",
  },
  {
    name: "refuses an unknown region",
    body: spec({ agents: { regions: ["mars"] } }),
    status: 400,
    code: "invalid_spec",
    mentions: "agents.regions[0]",
  },
  {
    name: "refuses a duplicate region",
    body: spec({ agents: { regions: ["weur", "weur"] } }),
    status: 400,
    code: "invalid_spec",
    mentions: "agents.regions[1]",
  },
  {
    name: "refuses a negative edge count",
    body: spec({ agents: { edge: -1 } }),
    status: 422,
    code: "out_of_range",
    mentions: "agents.edge",
  },
  {
    name: "refuses a threshold on an unknown metric",
    body: spec({ thresholds: { latency: "<1" } }),
    status: 400,
    code: "invalid_threshold",
    mentions: "metric",
  },
  {
    name: "refuses a non-string threshold value",
    body: spec({ thresholds: { request_latency: 500 } }),
    status: 400,
    code: "invalid_threshold",
    mentions: "request_latency",
  },
  { name: "refuses 33 thresholds", body: spec({ thresholds: thresholds(33) }), status: 422, code: "out_of_range", mentions: "thresholds" },
  {
    name: "refuses a notify URL outside the allowlist",
    body: spec({ notify: { url: "https://hooks.evil.test/x" } }),
    status: 403,
    code: "target_not_allowed",
    mentions: "notify.url",
  },
  {
    name: "refuses builtin:mock as a notify URL",
    body: spec({ notify: { url: "builtin:mock" } }),
    status: 400,
    code: "invalid_target",
    mentions: "notify.url",
  },
  {
    name: "refuses a dataset id that is not ds_ and 64 hex digits, naming the field",
    body: spec({ workload: { dataset: { id: "ds_123" } } }),
    status: 400,
    code: "invalid_spec",
    mentions: "workload.dataset.id must be",
  },
  {
    name: "refuses a dataset id in upper-case hex",
    body: spec({ workload: { dataset: { id: DS.toUpperCase().replace("DS_", "ds_") } } }),
    status: 400,
    code: "invalid_spec",
    mentions: "workload.dataset.id",
  },
  {
    name: "refuses an unknown sampling, listing the choices",
    body: spec({ workload: { dataset: { id: DS, sampling: "stratified" } } }),
    status: 400,
    code: "invalid_spec",
    mentions: '"shuffle"',
  },
  {
    name: "refuses an unknown field inside workload.dataset",
    body: spec({ workload: { dataset: { id: DS, type: "mooncake_trace" } } }),
    status: 400,
    code: "unknown_field",
    mentions: "workload.dataset.type",
  },
  {
    name: "refuses replaySpeedup without a dataset, naming workload.replaySpeedup",
    body: spec({ workload: { replaySpeedup: 2 } }),
    status: 400,
    code: "invalid_spec",
    mentions: "workload.replaySpeedup is only allowed with workload.dataset",
  },
  {
    name: "refuses a dataset with api http, which sends no prompt",
    body: { ...target({ api: "http" }), workload: { dataset: { id: DS } } },
    status: 400,
    code: "invalid_spec",
    mentions: "workload.dataset is not allowed with api",
  },
  {
    name: "refuses a shared prefix with api http, which sends no prompt",
    body: { ...target({ api: "http" }), workload: { sharedPrefix: { tokens: 1, prompts: 1 } } },
    status: 400,
    code: "invalid_spec",
    mentions: "workload.sharedPrefix is not allowed with api",
  },
  {
    name: "refuses a shared prefix with a dataset, which brings its own prompts",
    body: spec({ workload: { dataset: { id: DS }, sharedPrefix: { tokens: 8, prompts: 2 } } }),
    status: 400,
    code: "invalid_spec",
    mentions: "workload.sharedPrefix",
  },
  {
    name: "refuses a shared prefix without its prompts count, saying it is required",
    body: spec({ workload: { sharedPrefix: { tokens: 8 } } }),
    status: 400,
    code: "invalid_spec",
    mentions: "workload.sharedPrefix.prompts is required",
  },
  {
    name: "refuses a concurrency above MAX_CONCURRENCY",
    body: spec({ load: { concurrency: 101 } }),
    status: 422,
    code: "exceeds_cap",
    mentions: "MAX_CONCURRENCY",
  },
  {
    name: "names the cap even for an integer far beyond the safe range",
    body: spec({ load: { concurrency: 1e20 } }),
    status: 422,
    code: "exceeds_cap",
    mentions: "MAX_CONCURRENCY",
  },
  {
    name: "refuses a maxConcurrency above MAX_CONCURRENCY",
    body: spec({ load: { rate: 1, maxConcurrency: 101 } }),
    status: 422,
    code: "exceeds_cap",
    mentions: "MAX_CONCURRENCY",
  },
  { name: "refuses a rate above MAX_RATE", body: spec({ load: { rate: 51 } }), status: 422, code: "exceeds_cap", mentions: "MAX_RATE" },
  {
    name: "refuses stop requests above MAX_REQUESTS",
    body: spec({ stop: { requests: 1001 } }),
    status: 422,
    code: "exceeds_cap",
    mentions: "MAX_REQUESTS",
  },
  {
    name: "counts warmup requests against MAX_REQUESTS",
    body: spec({ stop: { requests: 900 }, warmup: { requests: 101 } }),
    status: 422,
    code: "exceeds_cap",
    mentions: "MAX_REQUESTS",
  },
  {
    name: "refuses a duration above MAX_DURATION_SECONDS",
    body: spec({ stop: { durationSeconds: 601 } }),
    status: 422,
    code: "exceeds_cap",
    mentions: "MAX_DURATION_SECONDS",
  },
  {
    name: "refuses more edge agents than MAX_AGENTS",
    body: spec({ agents: { edge: 5 } }),
    status: 422,
    code: "exceeds_cap",
    mentions: "MAX_AGENTS",
  },
];

describe("parseRunSpec: refused specs", () => {
  it.each(REFUSED)("$name", ({ body, status, code, mentions }) => {
    const e = refusal(body);
    expect({ status: e.status, code: e.code }).toEqual({ status, code });
    expect(e.message).toContain(mentions);
  });

  it("names a __proto__ key's path without echoing a key that is not plain", () => {
    const e = refusal(spec({ workload: JSON.parse('{"x\\u001b[2J":{"__proto__":1}}') }));
    expect({ status: e.status, code: e.code }).toEqual({ status: 400, code: "unknown_field" });
    expect(e.message).toBe('workload.?.__proto__ is not allowed: no body may use the key "__proto__".');
  });

  it("never echoes header values or the apiKey in an error message", () => {
    const secrets = { apiKey: "sk-secret", headers: { "x-a": "hdr-secret" } };
    const bodies = [
      target({ ...secrets, extra: 1 }),
      target({ ...secrets, timeoutSeconds: 0 }),
      target({ apiKey: "sk-secret\r\n", headers: { Host: "hdr-secret" } }),
      target({ apiKey: "sk-secret", headers: { "x-a": "hdr-secret\n" } }),
      remote({ ...secrets, url: "https://evil.test/?key=sk-secret" }),
    ];
    for (const body of bodies) expect(refusal(body).message).not.toMatch(/sk-secret|hdr-secret/);
  });
});

// Every number field of the RunSpec, just outside its range (the caps' own rows are above).
const NUMBER_FIELDS: { path: string; body: (n: number) => Body; low: number; high?: number }[] = [
  { path: "target.timeoutSeconds", body: (n) => target({ timeoutSeconds: n }), low: 0.5, high: 3601 },
  { path: "target.mock.ttftMs", body: (n) => target({ mock: { ttftMs: n } }), low: -1, high: 60_001 },
  { path: "target.mock.itlMs", body: (n) => target({ mock: { itlMs: n } }), low: -1, high: 10_001 },
  { path: "target.mock.errorRate", body: (n) => target({ mock: { errorRate: n } }), low: -0.1, high: 1.1 },
  { path: "workload.inputTokens.mean", body: (n) => spec({ workload: { inputTokens: { mean: n } } }), low: 0, high: 131_073 },
  { path: "workload.inputTokens.stddev", body: (n) => spec({ workload: { inputTokens: { stddev: n } } }), low: -1, high: 131_073 },
  { path: "workload.outputTokens.mean", body: (n) => spec({ workload: { outputTokens: { mean: n } } }), low: 0, high: 131_073 },
  { path: "workload.outputTokens.stddev", body: (n) => spec({ workload: { outputTokens: { stddev: n } } }), low: -1, high: 131_073 },
  { path: "workload.seed", body: (n) => spec({ workload: { seed: n } }), low: -1, high: 2 ** 32 },
  {
    path: "workload.sharedPrefix.tokens",
    body: (n) => spec({ workload: { sharedPrefix: { tokens: n, prompts: 1 } } }),
    low: 0,
    high: 131_073,
  },
  {
    path: "workload.sharedPrefix.prompts",
    body: (n) => spec({ workload: { sharedPrefix: { tokens: 1, prompts: n } } }),
    low: 0,
    high: 1_000_001,
  },
  {
    path: "workload.replaySpeedup",
    body: (n) => spec({ workload: { dataset: { id: DS }, replaySpeedup: n } }),
    low: 0,
    high: 10_001,
  },
  { path: "load.concurrency", body: (n) => spec({ load: { concurrency: n } }), low: 0 },
  { path: "load.rate", body: (n) => spec({ load: { rate: n } }), low: 0.0005 },
  { path: "load.maxConcurrency", body: (n) => spec({ load: { rate: 1, maxConcurrency: n } }), low: 0 },
  { path: "stop.requests", body: (n) => spec({ stop: { requests: n } }), low: 0 },
  { path: "stop.durationSeconds", body: (n) => spec({ stop: { durationSeconds: n } }), low: 0.0005 },
  { path: "warmup.requests", body: (n) => spec({ warmup: { requests: n } }), low: -1 },
  { path: "drainTimeoutSeconds", body: (n) => spec({ drainTimeoutSeconds: n }), low: -1, high: 3601 },
  { path: "agentTimeoutSeconds", body: (n) => spec({ agentTimeoutSeconds: n }), low: 0, high: 86_401 },
  { path: "graceSeconds", body: (n) => spec({ graceSeconds: n }), low: -1, high: 301 },
  { path: "agents.edge", body: (n) => spec({ agents: { edge: n } }), low: -1 },
];

describe("parseRunSpec: number fields", () => {
  const rows = NUMBER_FIELDS.flatMap((f) => [
    { ...f, end: "below", value: f.low },
    ...(f.high === undefined ? [] : [{ ...f, end: "above", value: f.high }]),
  ]);

  it.each(rows)("refuses $path $end its range with 422, naming the field and a number range", ({ path, body, value }) => {
    const e = refusal(body(value));
    expect({ status: e.status, code: e.code }).toEqual({ status: 422, code: "out_of_range" });
    expect(e.message).toMatch(new RegExp(`^${path.replaceAll(".", "\\.")} must be (a number|an integer) (from|>=) `));
  });

  it("bounds every number field without a schema maximum by an operator cap", () => {
    const uncapped = NUMBER_FIELDS.filter((f) => f.high === undefined);
    for (const f of uncapped) {
      const e = refusal(f.body(1e300));
      expect({ path: f.path, code: e.code }).toEqual({ path: f.path, code: "exceeds_cap" });
    }
  });
});

describe("publicSpec", () => {
  const secret = parseRunSpec(
    {
      target: { url: `${REMOTE_URL}?api-key=qs-secret&region=eu`, model: "m", apiKey: "sk-secret", headers: { "x-token": "hdr-secret" } },
      stop: { requests: 10 },
      notify: { url: "https://ci.example.com/hooks/T0/wh-secret?sig=sig-secret" },
    },
    cfg,
  );

  it("contains no secret anywhere", () => {
    expect(JSON.stringify(publicSpec(secret))).not.toMatch(/sk-secret|hdr-secret|qs-secret|wh-secret|sig-secret/);
  });

  it("replaces apiKey with hasApiKey", () => {
    expect(publicSpec(secret).target).not.toHaveProperty("apiKey");
    expect(publicSpec(secret).target.hasApiKey).toBe(true);
    expect(publicSpec(parseRunSpec(MOCK, cfg)).target.hasApiKey).toBe(false);
  });

  it("keeps header names and replaces their values", () => {
    expect(publicSpec(secret).target.headers).toEqual({ "x-token": "REDACTED" });
  });

  it("keeps query keys and replaces their values in the target URL", () => {
    expect(publicSpec(secret).target.url).toBe(`${REMOTE_URL}?api-key=REDACTED&region=REDACTED`);
  });

  it("hides the path and query values of the notify URL", () => {
    expect(publicSpec(secret).notify?.url).toBe("https://ci.example.com/REDACTED?sig=REDACTED");
  });

  it("does not change the spec it was given", () => {
    publicSpec(secret);
    expect(secret.target.apiKey).toBe("sk-secret");
    expect(secret.target.headers).toEqual({ "x-token": "hdr-secret" });
  });
});

describe("parseThreshold", () => {
  it("defaults the stat to avg", () => {
    expect(parseThreshold("request_error_rate", "<1")).toEqual({ metric: "request_error_rate", stat: "avg", op: "<", value: 1 });
  });

  it("reads a metric, a stat, a two-character operator and spaces", () => {
    const t = parseThreshold("time_to_first_token.p99", " <= 500.5 ");
    expect(t).toEqual({ metric: "time_to_first_token", stat: "p99", op: "<=", value: 500.5 });
  });

  it.each([
    [">", ">0", 0],
    [">=", ">=1e3", 1000],
    ["==", "==-2", -2],
    ["<", "<.5", 0.5],
  ])("reads the operator %s", (op, expr, value) => {
    expect(parseThreshold("request_latency.p50", expr)).toMatchObject({ op, value });
  });

  it.each([
    ["latency", "<1"],
    ["request_latency.p42", "<1"],
    ["request_latency.p99.extra", "<1"],
    ["request_throughput.p99", ">1"],
    ["request_latency", "500"],
    ["request_latency", "=500"],
    ["request_latency", "<"],
    ["request_latency", "<abc"],
    ["request_latency", "<1e999"],
    ["request_latency", "<Infinity"],
    ["request_latency", "<0x10"],
  ])("refuses %s: %s with 400 invalid_threshold", (key, expr) => {
    expect(() => parseThreshold(key, expr)).toThrow(expect.objectContaining({ status: 400, code: "invalid_threshold" }));
  });
});
