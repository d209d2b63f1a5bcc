// The OpenAI Embeddings answer (POST /mock/v1/embeddings): one vector per input after
// ttftMs (an embedding has no tokens to pace), in float or base64 form as asked; the
// official client asks for base64 by default and decodes it.

import type { MockKnobs } from "./answer";
import type { Timing } from "./stream";

export interface EmbeddingsJob {
  model: string;
  inputs: number;
  promptTokens: number;
  base64: boolean;
  dimensions: number;
}

export const DEFAULT_DIMENSIONS = 8;
export const MAX_DIMENSIONS = 4096;

/** A fixed unit vector: the mock measures time, not meaning. */
function vector(n: number): Float32Array {
  return new Float32Array(n).fill(1 / Math.sqrt(n));
}

function base64(v: Float32Array): string {
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export async function embeddingsReply(job: EmbeddingsJob, t: Timing, knobs: MockKnobs): Promise<Response> {
  await t.ticker.sleepUntil(t.start + knobs.ttftMs);
  const v = vector(job.dimensions);
  const embedding = job.base64 ? base64(v) : Array.from(v);
  return Response.json({
    object: "list",
    data: Array.from({ length: job.inputs }, (_, index) => ({ object: "embedding", index, embedding })),
    model: job.model,
    usage: { prompt_tokens: job.promptTokens, total_tokens: job.promptTokens },
  });
}
