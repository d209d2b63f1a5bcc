// The Anthropic Messages API answer (POST /mock/v1/messages): message_start with the
// input tokens, a thinking block (thinking_delta), then a text block (text_delta) or a
// tool_use block (input_json_delta), message_delta with the stop reason and the output
// tokens, message_stop. Anthropic reports no separate thinking count: output_tokens
// includes it.

import type { Answer, MockKnobs, PieceKind } from "./answer";
import { TOOL_NAME } from "./answer";
import { sse, sseBody, SSE_HEADERS, tokenTime } from "./stream";
import type { Timing } from "./stream";

export interface MessagesJob {
  model: string;
  stream: boolean;
  answer: Answer;
}

const hex = () => crypto.randomUUID().replaceAll("-", "");

export async function messagesReply(job: MessagesJob, t: Timing, knobs: MockKnobs): Promise<Response> {
  const r = new MessagesReply(job, t, knobs);
  if (job.stream) return new Response(sseBody(r.frames()), { headers: SSE_HEADERS });
  await t.ticker.sleepUntil(tokenTime(t, knobs, job.answer.pieces.length - 1));
  return Response.json(r.message(r.blocks(), r.stopReason(), job.answer.completionTokens));
}

class MessagesReply {
  private readonly id = `msg_${hex()}`;
  private readonly toolId = `toolu_${hex().slice(0, 24)}`;

  constructor(
    private readonly job: MessagesJob,
    private readonly t: Timing,
    private readonly knobs: MockKnobs,
  ) {}

  stopReason(): string {
    return this.job.answer.toolArguments !== null ? "tool_use" : "max_tokens";
  }

  blocks(): object[] {
    const a = this.job.answer;
    const out: object[] = [];
    if (a.reasoning !== "") out.push({ type: "thinking", thinking: a.reasoning, signature: "mock" });
    if (a.toolArguments !== null) out.push({ type: "tool_use", id: this.toolId, name: TOOL_NAME, input: JSON.parse(a.toolArguments) });
    else if (a.text !== "") out.push({ type: "text", text: a.text });
    return out;
  }

  message(content: object[], stopReason: string | null, outputTokens: number): object {
    return {
      id: this.id,
      type: "message",
      role: "assistant",
      model: this.job.model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: this.job.answer.promptTokens, output_tokens: outputTokens },
    };
  }

  private startBlock(kind: PieceKind): object {
    if (kind === "reasoning") return { type: "thinking", thinking: "", signature: "" };
    if (kind === "text") return { type: "text", text: "" };
    return { type: "tool_use", id: this.toolId, name: TOOL_NAME, input: {} };
  }

  async *frames(): AsyncGenerator<string> {
    const a = this.job.answer;
    yield sse({ type: "message_start", message: this.message([], null, 1) }, "message_start");
    let index = -1;
    let open: PieceKind | null = null;
    const stop = () => sse({ type: "content_block_stop", index }, "content_block_stop");
    for (let i = 0; i < a.pieces.length; i++) {
      const p = a.pieces[i]!;
      await this.t.ticker.sleepUntil(tokenTime(this.t, this.knobs, i));
      let frame = "";
      if (p.kind !== open) {
        if (open !== null) frame += stop();
        open = p.kind;
        index++;
        frame += sse({ type: "content_block_start", index, content_block: this.startBlock(p.kind) }, "content_block_start");
        // The tool call's first piece is its name, which content_block_start carried.
        if (p.kind === "tool") {
          yield frame;
          continue;
        }
      }
      const delta =
        p.kind === "reasoning"
          ? { type: "thinking_delta", thinking: p.text }
          : p.kind === "text"
            ? { type: "text_delta", text: p.text }
            : { type: "input_json_delta", partial_json: p.text };
      yield frame + sse({ type: "content_block_delta", index, delta }, "content_block_delta");
    }
    yield (open !== null ? stop() : "") +
      sse(
        {
          type: "message_delta",
          delta: { stop_reason: this.stopReason(), stop_sequence: null },
          usage: { output_tokens: a.completionTokens },
        },
        "message_delta",
      ) +
      sse({ type: "message_stop" }, "message_stop");
  }
}
