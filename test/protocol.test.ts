// The agent wire protocol's bodies at the door (contract/protocol.ts), through parseBody
// as the Worker uses it: every number field's range message, the strings an operator
// will read, and AIPerf's integer error codes.
import { describe, expect, it } from "vitest";
import { parseBody } from "../contract/body";
import { StatusError } from "../contract/errors";
import { JoinBody, LeaseBody, ReportBody, StopBody } from "../contract/protocol";

type Schema = typeof JoinBody | typeof LeaseBody | typeof ReportBody | typeof StopBody;

function refusal(schema: Schema, body: unknown): StatusError {
  try {
    parseBody(schema, body);
  } catch (e) {
    if (e instanceof StatusError) return e;
    throw e;
  }
  throw new Error("the body was accepted");
}

const lease = (extra: Record<string, unknown>) => ({ agentId: "ag_1", requestId: "r1", want: 1, ...extra });
const report = (extra: Record<string, unknown>) => ({ agentId: "ag_1", reportId: "p1", inflight: 0, ...extra });
const result = (extra: Record<string, unknown>) => report({ results: [{ seq: 0, ok: true, latencyMs: 5, ...extra }] });
const failed = (error: Record<string, unknown>) => result({ ok: false, error: { code: "timeout", type: "timeout", ...error } });

// Every number field of the protocol, just outside each end of its range, and the message it must get.
const NUMBERS: { field: string; schema: Schema; body: unknown; message: string }[] = [
  { field: "want", schema: LeaseBody, body: lease({ want: 0 }), message: "want must be at least 1." },
  { field: "want", schema: LeaseBody, body: lease({ want: 1e9 }), message: "want must be at most 1000." },
  { field: "lease inflight", schema: LeaseBody, body: lease({ inflight: -1 }), message: "inflight must be at least 0." },
  { field: "lease inflight", schema: LeaseBody, body: lease({ inflight: 1_000_001 }), message: "inflight must be at most 1000000." },
  { field: "report inflight", schema: ReportBody, body: report({ inflight: -1 }), message: "inflight must be at least 0." },
  { field: "report inflight", schema: ReportBody, body: report({ inflight: 1_000_001 }), message: "inflight must be at most 1000000." },
  { field: "seq", schema: ReportBody, body: result({ seq: -1 }), message: "results[0].seq must be at least 0." },
  {
    field: "seq",
    schema: ReportBody,
    body: result({ seq: 2 ** 53 }),
    message: `results[0].seq must be at most ${Number.MAX_SAFE_INTEGER}.`,
  },
  { field: "latencyMs", schema: ReportBody, body: result({ latencyMs: -1 }), message: "results[0].latencyMs must be at least 0." },
  {
    field: "latencyMs",
    schema: ReportBody,
    body: result({ latencyMs: 1e9 + 1 }),
    message: "results[0].latencyMs must be at most 1000000000.",
  },
  { field: "ttftMs", schema: ReportBody, body: result({ ttftMs: -0.5 }), message: "results[0].ttftMs must be at least 0." },
  { field: "ttftMs", schema: ReportBody, body: result({ ttftMs: 2e9 }), message: "results[0].ttftMs must be at most 1000000000." },
  { field: "inputTokens", schema: ReportBody, body: result({ inputTokens: -1 }), message: "results[0].inputTokens must be at least 0." },
  {
    field: "inputTokens",
    schema: ReportBody,
    body: result({ inputTokens: 10_000_001 }),
    message: "results[0].inputTokens must be at most 10000000.",
  },
  { field: "outputTokens", schema: ReportBody, body: result({ outputTokens: -1 }), message: "results[0].outputTokens must be at least 0." },
  {
    field: "outputTokens",
    schema: ReportBody,
    body: result({ outputTokens: 10_000_001 }),
    message: "results[0].outputTokens must be at most 10000000.",
  },
  { field: "endMs", schema: ReportBody, body: result({ endMs: -1 }), message: "results[0].endMs must be at least 0." },
  { field: "endMs", schema: ReportBody, body: result({ endMs: 1e10 + 1 }), message: "results[0].endMs must be at most 10000000000." },
  { field: "returned", schema: ReportBody, body: report({ returned: [3, -1] }), message: "returned[1] must be at least 0." },
  {
    field: "returned",
    schema: ReportBody,
    body: report({ returned: [2 ** 53] }),
    message: `returned[0] must be at most ${Number.MAX_SAFE_INTEGER}.`,
  },
  { field: "error.code", schema: ReportBody, body: failed({ code: -1 }), message: "results[0].error.code must be at least 0." },
  { field: "error.code", schema: ReportBody, body: failed({ code: 1000 }), message: "results[0].error.code must be at most 999." },
  { field: "clockTickMs", schema: JoinBody, body: { clockTickMs: -1 }, message: "clockTickMs must be at least 0." },
  { field: "clockTickMs", schema: JoinBody, body: { clockTickMs: 1001 }, message: "clockTickMs must be at most 1000." },
];

describe("number fields of the wire protocol", () => {
  it.each(NUMBERS)("refuses $field out of range with 422, naming the field and the bound: $message", ({ schema, body, message }) => {
    const e = refusal(schema, body);
    expect({ status: e.status, code: e.code, message: e.message }).toEqual({ status: 422, code: "out_of_range", message });
  });

  it("covers both ends of every number field", () => {
    const fields = new Set(NUMBERS.map((n) => n.field));
    expect(fields).toEqual(
      new Set([
        "want",
        "lease inflight",
        "report inflight",
        "seq",
        "latencyMs",
        "ttftMs",
        "inputTokens",
        "outputTokens",
        "endMs",
        "returned",
        "error.code",
        "clockTickMs",
      ]),
    );
    for (const f of fields) expect(NUMBERS.filter((n) => n.field === f)).toHaveLength(2);
  });

  it("still words string and array sizes as lengths and item counts", () => {
    expect(refusal(JoinBody, { name: "" }).message).toBe("name must not be empty.");
    expect(refusal(JoinBody, { name: "n".repeat(129) }).message).toBe("name must be at most 128 characters long.");
    expect(refusal(ReportBody, report({ returned: Array.from({ length: 10_001 }, (_, i) => i) })).message).toBe(
      "returned must have at most 10000 items.",
    );
    expect(refusal(LeaseBody, lease({ requestId: "" })).message).toBe("requestId must not be empty.");
  });

  it("says what an id must look like", () => {
    expect(refusal(LeaseBody, lease({ agentId: "ag 1" })).message).toBe("agentId must be printable ASCII without spaces.");
  });
});

// Strings an agent sends that an operator later reads: in status, on the dashboard, in a terminal.
const CONTROLS = [
  ["ESC", "\u001b[2J"],
  ["BEL", "ding\u0007"],
  ["NUL", "a\u0000b"],
  ["a newline", "a\nb"],
  ["a tab", "a\tb"],
  ["DEL", "a\u007f"],
  ["the C1 CSI", "a\u009b31m"],
  ["the C1 NEL", "a\u0085b"],
] as const;

const OPERATOR_STRINGS: { field: string; schema: Schema; body: (s: string) => unknown }[] = [
  { field: "name", schema: JoinBody, body: (s) => ({ name: s }) },
  { field: "region", schema: JoinBody, body: (s) => ({ region: s }) },
  { field: "results[0].error.code", schema: ReportBody, body: (s) => failed({ code: s }) },
  { field: "results[0].error.type", schema: ReportBody, body: (s) => failed({ type: s }) },
  { field: "results[0].error.message", schema: ReportBody, body: (s) => failed({ message: s }) },
];

describe("strings an agent sends to an operator", () => {
  const rows = OPERATOR_STRINGS.flatMap((f) => CONTROLS.map(([what, value]) => ({ ...f, what, value })));

  it.each(rows)("refuses $field containing $what with 400, naming the field", ({ field, schema, body, value }) => {
    const e = refusal(schema, body(value));
    expect({ status: e.status, code: e.code, message: e.message }).toEqual({
      status: 400,
      code: "invalid_spec",
      message: `${field} must not contain control characters.`,
    });
  });

  it("accepts printable text in any script, and an empty error message", () => {
    expect(parseBody(JoinBody, { name: "edge-東京 ✓ «α»", region: "São Paulo" })).toEqual({
      name: "edge-東京 ✓ «α»",
      region: "São Paulo",
    });
    const body = parseBody(ReportBody, failed({ code: "http_503", type: "http", message: "" }));
    expect(body.results[0]?.error).toEqual({ code: "http_503", type: "http", message: "" });
  });
});

describe("AIPerf's integer error codes", () => {
  it("records an integer code as its decimal string, so the coordinator sees one kind of code", () => {
    const body = parseBody(ReportBody, failed({ code: 503, type: "Service Unavailable", message: "overloaded" }));
    expect(body.results[0]?.error).toEqual({ code: "503", type: "Service Unavailable", message: "overloaded" });
    expect(parseBody(ReportBody, failed({ code: 0 })).results[0]?.error?.code).toBe("0");
  });

  it("keeps a string code as it is", () => {
    expect(parseBody(ReportBody, failed({ code: "503" })).results[0]?.error?.code).toBe("503");
  });

  it.each([
    ["a fraction", 503.5],
    ["a boolean", true],
    ["null", null],
    ["an object", { status: 503 }],
  ])("refuses %s as a code with 400, saying what a code may be", (_what, code) => {
    const e = refusal(ReportBody, failed({ code }));
    expect({ status: e.status, code: e.code, message: e.message }).toEqual({
      status: 400,
      code: "invalid_spec",
      message: "results[0].error.code must be a string or an integer.",
    });
  });

  it("still refuses an empty or overlong string code by its length", () => {
    expect(refusal(ReportBody, failed({ code: "" })).message).toBe("results[0].error.code must not be empty.");
    expect(refusal(ReportBody, failed({ code: "c".repeat(65) })).message).toBe("results[0].error.code must be at most 64 characters long.");
  });
});
