import readme from "../README.md?raw";
import { describe, expect, it } from "vitest";
import { DISTRIBUTION_TAGS, METRICS, metricsMarkdownTable, SCALAR_TAGS } from "../contract/metric-catalog";
import { toAiperfCsv } from "../contract/exports";
import { RunMetrics } from "../durable/metrics";

describe("the metric catalog", () => {
  it("is what the README's metric table says (npm run docs:metrics rewrites it)", () => {
    const section = /<!-- metrics:start[^>]*-->\n([\s\S]*?)\n<!-- metrics:end -->/.exec(readme);
    expect(section?.[1]).toBe(metricsMarkdownTable());
  });

  it("names each tag once, and gives AIPerf's JSON export order without gaps or repeats", () => {
    expect(new Set(METRICS.map((m) => m.tag)).size).toBe(METRICS.length);
    const orders = METRICS.map((m) => m.aiperfJsonOrder).filter((o) => o !== null);
    expect([...orders].sort((a, b) => a - b)).toEqual(orders.map((_, i) => i));
    expect([...DISTRIBUTION_TAGS, ...SCALAR_TAGS].sort()).toEqual(METRICS.map((m) => m.tag).sort());
  });

  it("is the list of metrics the results document carries, each with its catalog unit", () => {
    const doc = RunMetrics.empty().document(1_000);
    expect(Object.keys(doc)).toEqual(METRICS.map((m) => m.tag));
    for (const m of METRICS) expect(doc[m.tag].unit).toBe(m.unit);
  });

  it("gives the AIPerf CSV its display names", () => {
    const metrics = RunMetrics.empty();
    metrics.add(
      {
        seq: 0,
        ok: true,
        latencyMs: 100,
        ttftMs: 10,
        ttfoMs: 40,
        ttstMs: 10,
        outputTokens: 10,
        reasoningTokens: 3,
        inputTokens: 5,
      },
      { time_to_first_token: 100 },
    ); // goodput limits, so the goodput metrics have values too
    const csv = toAiperfCsv({ id: "x", metrics: metrics.document(1_000), errors: [] } as never);
    for (const m of METRICS) expect(csv).toContain(m.header);
  });
});
