// The incremental SSE parser: events come out whole however the network splits them.
import { describe, expect, it } from "vitest";
import { SseParser } from "../agent/sse";

function parseInPieces(text: string, cut: (i: number) => boolean): string[] {
  const p = new SseParser();
  const out: string[] = [];
  let piece = "";
  for (let i = 0; i < text.length; i++) {
    piece += text[i];
    if (cut(i)) {
      out.push(...p.push(piece));
      piece = "";
    }
  }
  out.push(...p.push(piece), ...p.end());
  return out;
}

const STREAM =
  ": keep-alive\n\n" +
  'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n' +
  'event: message\r\nid: 7\r\ndata: {"choices":[{"delta":{"content":"lo"}}]}\r\n\r\n' +
  'data: {"a":\rdata: 1}\r\r' +
  'data: {"usage":{"completion_tokens":2}}\n\n' +
  "data: [DONE]\n\n";

const EVENTS = [
  '{"choices":[{"delta":{"content":"Hel"}}]}',
  '{"choices":[{"delta":{"content":"lo"}}]}',
  '{"a":\n1}',
  '{"usage":{"completion_tokens":2}}',
  "[DONE]",
];

describe("SseParser", () => {
  it("yields the data of each event, skipping comments and other fields, with LF, CRLF and CR line ends", () => {
    expect(parseInPieces(STREAM, () => false)).toEqual(EVENTS);
  });

  it("yields the same events when the text arrives one character at a time", () => {
    expect(parseInPieces(STREAM, () => true)).toEqual(EVENTS);
  });

  it("yields the same events for every split point, including between the CR and LF of a pair", () => {
    for (let at = 0; at < STREAM.length; at++) {
      expect(parseInPieces(STREAM, (i) => i === at)).toEqual(EVENTS);
    }
  });

  it("does not dispatch an event before its blank line, and ignores events without data", () => {
    const p = new SseParser();
    expect(p.push('data: {"x":1}\n')).toEqual([]);
    expect(p.push("\n")).toEqual(['{"x":1}']);
    expect(p.push("event: ping\n\nid: 3\n\n")).toEqual([]);
  });

  it("keeps a final event cut off before its blank line, so a truncated stream is seen", () => {
    const p = new SseParser();
    expect(p.push('data: {"choices":[')).toEqual([]);
    expect(p.end()).toEqual(['{"choices":[']);
  });
});
