// What the mock answers, whatever the API's wire form: `outputTokens` pieces of one
// token each, in order: the reasoning (knob reasoningTokens, within the output length),
// then the answer, as text or, with the toolCalls knob, as one tool call. Every piece is
// one token by every encoding edgeperf ships, and so are the pieces together (a test
// checks), so a client counting tokens, or the events that carry them, finds exactly
// what `usage` says. `usage` is counted by the request's tokenizer (x-mock-tokenizer).

import { DEFAULT_TOKENIZER, TOKENIZERS } from "../contract/spec";
import { countTokens } from "../contract/tokenizer";
import type { TokenizerName } from "../contract/spec";

export interface MockKnobs {
  ttftMs: number;
  itlMs: number;
  errorRate: number;
  reasoningTokens: number;
  /** 1: the answer is a tool call; 0: text. */
  toolCalls: number;
  tokenizer: TokenizerName;
}

export const MOCK_DEFAULTS: MockKnobs = {
  ttftMs: 20,
  itlMs: 5,
  errorRate: 0,
  reasoningTokens: 0,
  toolCalls: 0,
  tokenizer: DEFAULT_TOKENIZER,
};

/** Tokens of `text` by `tokenizer`, as the mock's usage reports them: the agents' own counter (contract/tokenizer.ts). */
export const mockTokens: (text: string, tokenizer: TokenizerName) => number = countTokens;

export function isTokenizer(name: string): name is TokenizerName {
  return (TOKENIZERS as readonly string[]).includes(name);
}

export const TEXT_TOKEN = " tok";
export const REASONING_TOKEN = " think";
export const TOOL_NAME = "lookup";
// {"q":" tok tok …"}: each of these is one token, and a tool call of n ≥ 6 tokens is the
// name, the three opening pieces, n − 5 words and the closing piece.
const ARGS_OPEN = ['{"', "q", '":"'];
const ARGS_CLOSE = '"}';

export type PieceKind = "reasoning" | "text" | "tool";

export interface Piece {
  kind: PieceKind;
  /** For "tool": the first piece is the function's name, the others pieces of its arguments. */
  text: string;
}

export interface Answer {
  pieces: Piece[];
  reasoning: string;
  text: string;
  /** The tool call's arguments (JSON text), when the answer is one. */
  toolArguments: string | null;
  /** "length" (the output length was reached) or "tool_calls". */
  finish: "length" | "tool_calls";
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
}

/** The answer to a request asking for `outputTokens` tokens, whose prompt has `promptTokens`. */
export function planAnswer(outputTokens: number, promptTokens: number, knobs: MockKnobs): Answer {
  const reasoningCount = Math.min(knobs.reasoningTokens, outputTokens);
  const rest = outputTokens - reasoningCount;
  const pieces: Piece[] = Array.from({ length: reasoningCount }, () => ({ kind: "reasoning", text: REASONING_TOKEN }));
  let toolArguments: string | null = null;
  if (rest > 0 && knobs.toolCalls) {
    const args = [...ARGS_OPEN, ...Array.from({ length: Math.max(0, rest - 5) }, () => TEXT_TOKEN), ARGS_CLOSE];
    toolArguments = args.join("");
    pieces.push({ kind: "tool", text: TOOL_NAME }, ...args.map((text) => ({ kind: "tool" as const, text })));
  } else {
    for (let i = 0; i < rest; i++) pieces.push({ kind: "text", text: TEXT_TOKEN });
  }
  const reasoning = REASONING_TOKEN.repeat(reasoningCount);
  const text = TEXT_TOKEN.repeat(toolArguments === null ? rest : 0);
  const reasoningTokens = mockTokens(reasoning, knobs.tokenizer);
  return {
    pieces,
    reasoning,
    text,
    toolArguments,
    finish: toolArguments === null ? "length" : "tool_calls",
    promptTokens,
    completionTokens: reasoningTokens + mockTokens(text + (toolArguments === null ? "" : TOOL_NAME + toolArguments), knobs.tokenizer),
    reasoningTokens,
  };
}
