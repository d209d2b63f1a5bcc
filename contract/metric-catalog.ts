// The metric catalog: every metric edgeperf reports, declared once. Tags, units and
// AIPerf display names follow NVIDIA AIPerf (its metric classes' `tag`, `header` and
// `unit`), so tools that read AIPerf's exports read ours. Every surface derives from
// this list and never names a metric itself: the results document (durable/metrics.ts
// computes each entry), the AIPerf exports (contract/exports.ts), thresholds
// (contract/thresholds.ts), the CLI table (cli/table.ts), the dashboard (served to the
// browser as /assets/metrics.ui.js) and the README's metric table (checked by a test).
// Adding a metric: an entry here, then its computation (docs/ARCHITECTURE.md, "Recipes").

export type MetricKind = "distribution" | "scalar";

export interface MetricDef {
  readonly tag: string;
  /** AIPerf's `header`: the name in its CSV export and console table. */
  readonly header: string;
  /** A short name for the dashboard. */
  readonly label: string;
  readonly unit: string;
  /** Distributions carry avg, min, max, sum, std, count and percentiles; scalars only avg. */
  readonly kind: MetricKind;
  /**
   * The field's place in AIPerf's JsonExportData (its JSON export writes declared fields
   * in this order); null for a tag AIPerf does not declare, written after them as an extra.
   */
  readonly aiperfJsonOrder: number | null;
  /** Decimals in the CLI table (AIPerf's console: 2, counts 0); token counts are integers in the CSV. */
  readonly precision: 0 | 2;
  /** Token counts: AIPerf keeps them as ints, so the CSV writes min, max and sum without decimals. */
  readonly integer: boolean;
  /** Whether a smaller value is better (regression checks, charts); null where neither is (lengths, duration). */
  readonly lowerIsBetter: boolean | null;
  /** One line, for the README and help texts. */
  readonly definition: string;
}

/** In the order the CLI table and the dashboard show them. */
export const METRICS = [
  {
    tag: "time_to_first_token",
    header: "Time to First Token",
    label: "Time to first token",
    unit: "ms",
    kind: "distribution",
    aiperfJsonOrder: 3,
    precision: 2,
    integer: false,
    lowerIsBetter: true,
    definition: "first token of any kind (reasoning, answer or tool call) − request start",
  },
  {
    tag: "time_to_first_output_token",
    header: "Time to First Output Token",
    label: "Time to first output token",
    unit: "ms",
    kind: "distribution",
    aiperfJsonOrder: null,
    precision: 2,
    integer: false,
    lowerIsBetter: true,
    definition: "first non-reasoning token (answer or tool call) − request start; TTFT when nothing reasons",
  },
  {
    tag: "time_to_second_token",
    header: "Time to Second Token",
    label: "Time to second token",
    unit: "ms",
    kind: "distribution",
    aiperfJsonOrder: 4,
    precision: 2,
    integer: false,
    lowerIsBetter: true,
    definition: "second token's arrival − first token's arrival (streaming)",
  },
  {
    tag: "request_latency",
    header: "Request Latency",
    label: "Request latency",
    unit: "ms",
    kind: "distribution",
    aiperfJsonOrder: 1,
    precision: 2,
    integer: false,
    lowerIsBetter: true,
    definition: "last token of any kind − request start (streaming); response fully read − request start (otherwise)",
  },
  {
    tag: "inter_token_latency",
    header: "Inter Token Latency",
    label: "Inter-token latency",
    unit: "ms",
    kind: "distribution",
    aiperfJsonOrder: 5,
    precision: 2,
    integer: false,
    lowerIsBetter: true,
    definition: "(latency − TTFT) / (output tokens − 1), when ≥ 2 tokens",
  },
  {
    tag: "output_token_throughput_per_user",
    header: "Output Token Throughput Per User",
    label: "Output throughput per user",
    unit: "tokens/sec/user",
    kind: "distribution",
    aiperfJsonOrder: 7,
    precision: 2,
    integer: false,
    lowerIsBetter: false,
    definition: "1000 / ITL",
  },
  {
    tag: "output_sequence_length",
    header: "Output Sequence Length",
    label: "Output sequence length",
    unit: "tokens",
    kind: "distribution",
    aiperfJsonOrder: 8,
    precision: 2,
    integer: true,
    lowerIsBetter: null,
    definition: "output tokens, reasoning included: from `usage` when the server reports it, else counted by the tokenizer",
  },
  {
    tag: "input_sequence_length",
    header: "Input Sequence Length",
    label: "Input sequence length",
    unit: "tokens",
    kind: "distribution",
    aiperfJsonOrder: 9,
    precision: 2,
    integer: true,
    lowerIsBetter: null,
    definition: "prompt tokens: from `usage` when the server reports it, else the synthetic prompt's, by the tokenizer",
  },
  {
    tag: "reasoning_token_count",
    header: "Reasoning Token Count",
    label: "Reasoning tokens",
    unit: "tokens",
    kind: "distribution",
    aiperfJsonOrder: 10,
    precision: 2,
    integer: true,
    lowerIsBetter: null,
    definition:
      "of the output tokens, the reasoning ones: `usage.completion_tokens_details.reasoning_tokens`, else counted; requests that reasoned",
  },
  {
    tag: "output_token_throughput",
    header: "Output Token Throughput",
    label: "Output token throughput",
    unit: "tokens/sec",
    kind: "scalar",
    aiperfJsonOrder: 6,
    precision: 2,
    integer: false,
    lowerIsBetter: false,
    definition: "output tokens of successful requests / `benchmark_duration`",
  },
  {
    tag: "total_token_throughput",
    header: "Total Token Throughput",
    label: "Total token throughput",
    unit: "tokens/sec",
    kind: "scalar",
    aiperfJsonOrder: null,
    precision: 2,
    integer: false,
    lowerIsBetter: false,
    definition: "input + output tokens of successful requests / `benchmark_duration`",
  },
  {
    tag: "good_request_count",
    header: "Good Request Count",
    label: "Good requests",
    unit: "requests",
    kind: "scalar",
    aiperfJsonOrder: null,
    precision: 0,
    integer: false,
    lowerIsBetter: false,
    definition: "successful requests meeting every `goodput` limit of the RunSpec (absent without one)",
  },
  {
    tag: "goodput",
    header: "Goodput",
    label: "Goodput",
    unit: "requests/sec",
    kind: "scalar",
    aiperfJsonOrder: null,
    precision: 2,
    integer: false,
    lowerIsBetter: false,
    definition: "good requests / `benchmark_duration`",
  },
  {
    tag: "request_throughput",
    header: "Request Throughput",
    label: "Request throughput",
    unit: "requests/sec",
    kind: "scalar",
    aiperfJsonOrder: 0,
    precision: 2,
    integer: false,
    lowerIsBetter: false,
    definition: "successful requests / `benchmark_duration`",
  },
  {
    tag: "request_count",
    header: "Request Count",
    label: "Requests",
    unit: "requests",
    kind: "scalar",
    aiperfJsonOrder: 2,
    precision: 0,
    integer: false,
    lowerIsBetter: false,
    definition: "successful measured requests",
  },
  {
    tag: "error_request_count",
    header: "Error Request Count",
    label: "Errors",
    unit: "requests",
    kind: "scalar",
    aiperfJsonOrder: 12,
    precision: 0,
    integer: false,
    lowerIsBetter: true,
    definition: "failed measured requests",
  },
  {
    tag: "request_error_rate",
    header: "Request Error Rate",
    label: "Error rate",
    unit: "%",
    kind: "scalar",
    aiperfJsonOrder: null,
    precision: 2,
    integer: false,
    lowerIsBetter: true,
    definition: "100 × failures / (successes + failures)",
  },
  {
    tag: "benchmark_duration",
    header: "Benchmark Duration",
    label: "Duration",
    unit: "sec",
    kind: "scalar",
    aiperfJsonOrder: 11,
    precision: 2,
    integer: false,
    lowerIsBetter: null,
    definition: "first measured credit granted → last measured request settled (coordinator clock)",
  },
] as const satisfies readonly MetricDef[];

type Entry = (typeof METRICS)[number];
export type MetricTag = Entry["tag"];
export type DistributionTag = Extract<Entry, { kind: "distribution" }>["tag"];
export type ScalarTag = Extract<Entry, { kind: "scalar" }>["tag"];

export const METRIC_TAGS: readonly MetricTag[] = METRICS.map((m) => m.tag);
export const DISTRIBUTION_TAGS: readonly DistributionTag[] = METRICS.filter(
  (m): m is Extract<Entry, { kind: "distribution" }> => m.kind === "distribution",
).map((m) => m.tag);
export const SCALAR_TAGS: readonly ScalarTag[] = METRICS.filter((m): m is Extract<Entry, { kind: "scalar" }> => m.kind === "scalar").map(
  (m) => m.tag,
);

const BY_TAG = new Map<string, MetricDef>(METRICS.map((m) => [m.tag, m]));

/** The catalog entry of `tag`; undefined for a tag that is not ours. */
export function metricDef(tag: string): MetricDef | undefined {
  return BY_TAG.get(tag);
}

/** The README's metric table, as Markdown (a test keeps the README equal to it). */
export function metricsMarkdownTable(): string {
  const rows = METRICS.map(
    (m) =>
      `| \`${m.tag}\` | ${m.unit} | ${m.kind} | ${m.lowerIsBetter === null ? "—" : m.lowerIsBetter ? "lower" : "higher"} | ${m.definition} |`,
  );
  return ["| Tag | Unit | Kind | Better | Definition |", "|---|---|---|---|---|", ...rows].join("\n");
}
