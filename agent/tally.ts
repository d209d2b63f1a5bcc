// What a response said, gathered over its events (agent/target.ts measures with it): the
// answer and reasoning texts, the server's usage (later fields win), when tokens came,
// and the token counts, the server's where it gave them and the tokenizer's otherwise.

import type { ResultItem } from "../contract/protocol";
import type { TokenizerName } from "../contract/spec";
import { countTokens } from "../contract/tokenizer";
import type { Reading, Usage } from "./endpoints";
import type { Job } from "./prompt";

export class Tally {
  first: number | null = null;
  second: number | null = null;
  firstOutput: number | null = null;
  last = 0;
  private readonly reasoning: string[] = [];
  private readonly output: string[] = [];
  private usage: Usage = {};
  /** The reasoning text's tokens, once counted (both counts may need it). */
  private reasoningCounted: number | null = null;

  add(r: Reading, t: number): void {
    this.usage = { ...this.usage, ...r.usage };
    if (r.reasoning === "" && r.output === "") return;
    if (this.first === null) this.first = t;
    else this.second ??= t;
    if (r.output !== "") {
      this.firstOutput ??= t;
      this.output.push(r.output);
    }
    if (r.reasoning !== "") this.reasoning.push(r.reasoning);
    this.last = t;
  }

  /** The answer the target gave: its output text (answer and tool calls), reasoning left out. */
  get answer(): string {
    return this.output.join("");
  }

  get empty(): boolean {
    return this.first === null && !(this.usage.completionTokens !== undefined && this.usage.completionTokens > 0);
  }

  /**
   * Token counts: the server's where it reported them, the tokenizer's otherwise (texts are
   * counted only then). A request that reasoned gets a reasoning count; one that did not
   * gets one only from a server that says it reasoned (OpenAI's o-series hides the text).
   */
  tokens(job: Job, tokenizer: TokenizerName): Pick<ResultItem, "inputTokens" | "outputTokens" | "reasoningTokens"> {
    const u = this.usage;
    const reasoned = this.reasoning.length > 0;
    const outputTokens = u.completionTokens ?? countTokens(this.output.join(""), tokenizer) + this.reasoningCount(tokenizer);
    const reasoningTokens = reasoned
      ? (u.reasoningTokens ?? this.reasoningCount(tokenizer))
      : u.reasoningTokens
        ? u.reasoningTokens
        : undefined;
    return {
      inputTokens: u.promptTokens ?? job.inputTokens,
      outputTokens,
      ...(reasoningTokens !== undefined ? { reasoningTokens } : {}),
    };
  }

  /**
   * The reasoning text's tokens by the tokenizer, counted at most once (a method, not a
   * closure per request: see agent/target.ts's sendRequest).
   */
  private reasoningCount(tokenizer: TokenizerName): number {
    this.reasoningCounted ??= countTokens(this.reasoning.join(""), tokenizer);
    return this.reasoningCounted;
  }
}
