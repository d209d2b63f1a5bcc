// The OpenAI Chat Completions and Completions answers (mock/answer.ts's pieces in
// OpenAI's wire form). Chat streams reasoning as delta.reasoning_content, as vLLM,
// SGLang and DeepSeek do, and a tool call as tool_calls deltas: the first with its id,
// type and name, then the arguments piece by piece.

import type { Answer, MockKnobs, Piece } from "./answer";
import { TOOL_NAME } from "./answer";
import { sse, sseBody, SSE_HEADERS, tokenTime } from "./stream";
import type { Timing } from "./stream";

export type OpenAiApi = "chat" | "completions";

export interface OpenAiJob {
  api: OpenAiApi;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  answer: Answer;
}

export async function openAiReply(job: OpenAiJob, t: Timing, knobs: MockKnobs): Promise<Response> {
  const reply = new Reply(job, t, knobs);
  if (job.stream) return new Response(sseBody(reply.frames()), { headers: SSE_HEADERS });
  await t.ticker.sleepUntil(tokenTime(t, knobs, job.answer.pieces.length - 1));
  return Response.json(reply.whole());
}

class Reply {
  private readonly id: string;
  private readonly callId = `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(
    private readonly job: OpenAiJob,
    private readonly t: Timing,
    private readonly knobs: MockKnobs,
  ) {
    this.id = `${job.api === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
  }

  private usage() {
    const a = this.job.answer;
    return {
      prompt_tokens: a.promptTokens,
      completion_tokens: a.completionTokens,
      total_tokens: a.promptTokens + a.completionTokens,
      ...(a.reasoningTokens > 0 ? { completion_tokens_details: { reasoning_tokens: a.reasoningTokens } } : {}),
    };
  }

  private envelope(object: string) {
    return { id: this.id, object, created: this.created, model: this.job.model };
  }

  private toolCall(args: string) {
    return { id: this.callId, type: "function", function: { name: TOOL_NAME, arguments: args } };
  }

  whole(): object {
    const a = this.job.answer;
    const chat = this.job.api === "chat";
    const message = {
      role: "assistant",
      content: a.toolArguments === null ? a.text : null,
      refusal: null,
      ...(a.reasoning !== "" ? { reasoning_content: a.reasoning } : {}),
      ...(a.toolArguments !== null ? { tool_calls: [this.toolCall(a.toolArguments)] } : {}),
    };
    const choice = chat
      ? { index: 0, message, logprobs: null, finish_reason: a.finish }
      : { index: 0, text: a.reasoning + a.text, logprobs: null, finish_reason: "length" };
    return { ...this.envelope(chat ? "chat.completion" : "text_completion"), choices: [choice], usage: this.usage() };
  }

  /** A chat delta for one piece; the first delta of the message also says the role. */
  private delta(p: Piece, i: number, firstTool: boolean): object {
    const role = i === 0 ? { role: "assistant" } : {};
    if (p.kind === "reasoning") return { ...role, reasoning_content: p.text };
    if (p.kind === "text") return { ...role, content: p.text };
    const call = firstTool ? this.toolCall("") : { function: { arguments: p.text } };
    return { ...role, tool_calls: [{ index: 0, ...call }] };
  }

  // The chunks OpenAI streams: one per token, one with finish_reason and no content, with
  // include_usage one with empty choices and the usage (every other chunk then carries
  // "usage": null), then [DONE].
  async *frames(): AsyncGenerator<string> {
    const chat = this.job.api === "chat";
    const a = this.job.answer;
    const head = {
      ...this.envelope(chat ? "chat.completion.chunk" : "text_completion"),
      ...(this.job.includeUsage ? { usage: null } : {}),
    };
    const choice = (p: Piece | null, i: number, finish: string | null) => {
      if (!chat) return { index: 0, text: p?.text ?? "", logprobs: null, finish_reason: finish };
      const delta = p === null ? {} : this.delta(p, i, p.kind === "tool" && a.pieces[i - 1]?.kind !== "tool");
      return { index: 0, delta, logprobs: null, finish_reason: finish };
    };
    for (let i = 0; i < a.pieces.length; i++) {
      await this.t.ticker.sleepUntil(tokenTime(this.t, this.knobs, i));
      yield sse({ ...head, choices: [choice(a.pieces[i]!, i, null)] });
    }
    yield sse({ ...head, choices: [choice(null, a.pieces.length, chat ? a.finish : "length")] });
    if (this.job.includeUsage) yield sse({ ...head, choices: [], usage: this.usage() });
    yield "data: [DONE]\n\n";
  }
}
