// The OpenAI Responses API answer (POST /mock/v1/responses): a reasoning item whose text
// streams as response.reasoning_text.delta (as gpt-oss served by vLLM streams it), then a
// message whose text streams as response.output_text.delta, or a function call whose
// arguments stream as response.function_call_arguments.delta; response.completed ends
// the stream with the usage.

import type { Answer, MockKnobs } from "./answer";
import { TOOL_NAME } from "./answer";
import { sse, sseBody, SSE_HEADERS, tokenTime } from "./stream";
import type { Timing } from "./stream";

export interface ResponsesJob {
  model: string;
  stream: boolean;
  answer: Answer;
}

const hex = () => crypto.randomUUID().replaceAll("-", "");

export async function responsesReply(job: ResponsesJob, t: Timing, knobs: MockKnobs): Promise<Response> {
  const r = new ResponsesReply(job, t, knobs);
  if (job.stream) return new Response(sseBody(r.frames()), { headers: SSE_HEADERS });
  await t.ticker.sleepUntil(tokenTime(t, knobs, job.answer.pieces.length - 1));
  return Response.json(r.response("completed", r.items()));
}

class ResponsesReply {
  private readonly id = `resp_${hex()}`;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly ids = { reasoning: `rs_${hex()}`, message: `msg_${hex()}`, call: `fc_${hex()}`, callId: `call_${hex().slice(0, 24)}` };
  private seq = 0;

  constructor(
    private readonly job: ResponsesJob,
    private readonly t: Timing,
    private readonly knobs: MockKnobs,
  ) {}

  private usage() {
    const a = this.job.answer;
    return {
      input_tokens: a.promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: a.completionTokens,
      output_tokens_details: { reasoning_tokens: a.reasoningTokens },
      total_tokens: a.promptTokens + a.completionTokens,
    };
  }

  /** The output items of the finished answer, in order. */
  items(): object[] {
    const a = this.job.answer;
    const out: object[] = [];
    if (a.reasoning !== "") out.push(this.reasoningItem(a.reasoning, "completed"));
    if (a.toolArguments !== null) out.push(this.callItem(a.toolArguments, "completed"));
    else if (a.text !== "") out.push(this.messageItem(a.text, "completed"));
    return out;
  }

  private reasoningItem(text: string, status: string) {
    return { id: this.ids.reasoning, type: "reasoning", summary: [], content: [{ type: "reasoning_text", text }], status };
  }
  private messageItem(text: string, status: string) {
    const content = text === "" && status !== "completed" ? [] : [{ type: "output_text", text, annotations: [] }];
    return { id: this.ids.message, type: "message", role: "assistant", status, content };
  }
  private callItem(args: string, status: string) {
    return { id: this.ids.call, type: "function_call", call_id: this.ids.callId, name: TOOL_NAME, arguments: args, status };
  }

  response(status: "in_progress" | "completed", output: object[]): object {
    return {
      id: this.id,
      object: "response",
      created_at: this.created,
      status,
      model: this.job.model,
      output,
      usage: status === "completed" ? this.usage() : null,
    };
  }

  private event(type: string, fields: object): string {
    return sse({ type, sequence_number: this.seq++, ...fields }, type);
  }

  async *frames(): AsyncGenerator<string> {
    const a = this.job.answer;
    yield this.event("response.created", { response: this.response("in_progress", []) });
    let index = -1;
    let open: "reasoning" | "text" | "tool" | null = null;
    let text = "";
    const close = (): string => {
      const done = { output_index: index };
      if (open === "reasoning") {
        return (
          this.event("response.reasoning_text.done", { item_id: this.ids.reasoning, ...done, content_index: 0, text }) +
          this.event("response.output_item.done", { ...done, item: this.reasoningItem(text, "completed") })
        );
      }
      if (open === "text") {
        return (
          this.event("response.output_text.done", { item_id: this.ids.message, ...done, content_index: 0, text, logprobs: [] }) +
          this.event("response.output_item.done", { ...done, item: this.messageItem(text, "completed") })
        );
      }
      return (
        this.event("response.function_call_arguments.done", { item_id: this.ids.call, ...done, arguments: text }) +
        this.event("response.output_item.done", { ...done, item: this.callItem(text, "completed") })
      );
    };
    for (let i = 0; i < a.pieces.length; i++) {
      const p = a.pieces[i]!;
      await this.t.ticker.sleepUntil(tokenTime(this.t, this.knobs, i));
      let frame = "";
      if (p.kind !== open) {
        if (open !== null) frame += close();
        open = p.kind;
        index++;
        text = "";
        const item =
          p.kind === "reasoning"
            ? this.reasoningItem("", "in_progress")
            : p.kind === "text"
              ? this.messageItem("", "in_progress")
              : this.callItem("", "in_progress");
        frame += this.event("response.output_item.added", { output_index: index, item });
        // The tool call's first piece is its name, which output_item.added already carried.
        if (p.kind === "tool") {
          yield frame;
          continue;
        }
      }
      text += p.text;
      const at = { output_index: index };
      if (p.kind === "reasoning")
        frame += this.event("response.reasoning_text.delta", { item_id: this.ids.reasoning, ...at, content_index: 0, delta: p.text });
      else if (p.kind === "text")
        frame += this.event("response.output_text.delta", {
          item_id: this.ids.message,
          ...at,
          content_index: 0,
          delta: p.text,
          logprobs: [],
        });
      else frame += this.event("response.function_call_arguments.delta", { item_id: this.ids.call, ...at, delta: p.text });
      yield frame;
    }
    yield (open !== null ? close() : "") + this.event("response.completed", { response: this.response("completed", this.items()) });
  }
}
