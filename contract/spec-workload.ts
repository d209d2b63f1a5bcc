// workload, what each request asks for (README, "Datasets and workloads"): synthetic
// prompts drawn from token-length distributions and a seed, optionally behind shared
// prefixes, or an uploaded dataset's prompts. Bounded here so every draw the agents make
// from it (agent/prompt.ts) stays finite and fast.

import { z } from "zod";
import { DATASET_ID, SAMPLINGS } from "./dataset";
import { fail, int, num } from "./spec-fields";

// Draws are clamped to [1, 262,144] tokens (agent/prompt.ts): a spread wider than the
// largest mean only piles draws onto the clamps, and an unbounded one could overflow.
const MAX_TOKEN_MEAN = 131_072;

function tokens(mean: number) {
  return z.strictObject({ mean: int(1, MAX_TOKEN_MEAN).default(mean), stddev: num(0, MAX_TOKEN_MEAN).default(0) }).prefault({});
}

// Shared prefixes are drawn per request from a pool this large; only its size is stored,
// each prefix's text is a pure function of (seed, index) (agent/prompt.ts).
const MAX_PREFIX_PROMPTS = 1_000_000;

const DatasetRefSchema = z.strictObject({
  id: z.string().regex(DATASET_ID, { error: 'must be "ds_" followed by 64 lowercase hex digits, as POST /v1/datasets answers' }),
  sampling: z.enum(SAMPLINGS).default("sequential"),
});

export const WorkloadSchema = z
  .strictObject({
    inputTokens: tokens(550),
    outputTokens: tokens(128),
    seed: int(0, 2 ** 32 - 1).default(0),
    // An uploaded dataset's prompts instead of synthetic ones (README, "Datasets and workloads").
    dataset: DatasetRefSchema.optional(),
    // AIPerf's --num-prefix-prompts and --prefix-prompt-length: every prompt starts with one
    // of `prompts` prefixes of `tokens` tokens; inputTokens is the part after it, as in AIPerf.
    sharedPrefix: z.strictObject({ tokens: int(1, MAX_TOKEN_MEAN), prompts: int(1, MAX_PREFIX_PROMPTS) }).optional(),
    // A mooncake_trace's timestamps divided by this. The dataset's type is known only when
    // the run is created (worker), which refuses it for other types; here only its range.
    replaySpeedup: num(0.001, 10_000).optional(),
  })
  .superRefine((w, ctx) => {
    if (w.replaySpeedup !== undefined && w.dataset === undefined) {
      fail(ctx, ["replaySpeedup"], "is only allowed with workload.dataset (a mooncake_trace dataset)");
    }
    if (w.sharedPrefix !== undefined && w.dataset !== undefined) {
      fail(ctx, ["sharedPrefix"], "is only allowed with synthetic prompts, not with workload.dataset");
    }
  });
