// contract/dataset-format.ts: AIPerf's JSONL layouts checked line by line, normalized, and
// named by a content id that ignores the file's spacing and field order.
import { describe, expect, it } from "vitest";
import { DATASET_ID } from "../contract/dataset";
import { DatasetError, canonicalJsonl, datasetId, parseDataset } from "../contract/dataset-format";
import type { DatasetType } from "../contract/dataset";

const jsonl = (...lines: unknown[]) => lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n");

/** The error parseDataset throws for this text. */
function refusal(type: DatasetType, text: string, limits?: { maxBytes: number; maxItems: number }): DatasetError {
  try {
    parseDataset(type, text, limits);
  } catch (e) {
    if (e instanceof DatasetError) return e;
    throw e;
  }
  throw new Error("parseDataset accepted the text");
}

describe("single_turn", () => {
  it("normalizes text, messages and output_length into one turn per line, skipping blank lines", () => {
    const text = jsonl(
      { text: "hello", output_length: 12 },
      "",
      "   ",
      {
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "hi" },
        ],
      },
      { type: "single_turn", texts: ["a", "b"] },
    );
    expect(parseDataset("single_turn", text)).toEqual([
      { turns: [{ text: "hello", outputLength: 12 }] },
      {
        turns: [
          {
            messages: [
              { role: "system", content: "be brief" },
              { role: "user", content: "hi" },
            ],
          },
        ],
      },
      { turns: [{ text: "a\nb" }] },
    ]);
  });

  it("accepts a leading byte-order mark and CRLF line ends", () => {
    expect(parseDataset("single_turn", `\ufeff{"text":"a"}\r\n{"text":"b"}\r\n`)).toEqual([
      { turns: [{ text: "a" }] },
      { turns: [{ text: "b" }] },
    ]);
  });

  it.each([
    [jsonl({ text: "a" }, {}), 2, "text (a string) or messages (a list of {role, content}) is required"],
    [jsonl({ text: "a", messages: [{ role: "user", content: "b" }] }), 1, "give text or messages, not both"],
    [jsonl({ text: 5 }), 1, "text must be a string"],
    [jsonl({ text: "a", output_length: 0 }), 1, "output_length must be an integer ≥ 1"],
    [jsonl({ text: "a", output_length: 1.5 }), 1, "output_length must be an integer ≥ 1"],
    [jsonl({ text: "a", image: "x.png" }), 1, "image: images are not supported (edgeperf sends text only)"],
    [jsonl({ text: "a", colour: "red" }), 1, "unknown field colour (allowed: type, text, texts, messages, output_length)"],
    [jsonl({ messages: [] }), 1, "messages must be a non-empty list of {role, content}"],
    [jsonl({ messages: [{ role: "user" }] }), 1, "messages[0].content must be a string"],
    [jsonl({ text: "a", type: "multi_turn" }), 1, 'type is "multi_turn" but the dataset is single_turn'],
    [jsonl({ text: "a" }, "{not json"), 2, "not valid JSON"],
    [jsonl({ text: "a" }, "[1,2]"), 2, "must be a JSON object"],
  ])("refuses %s at line %i: %s", (text, line, reason) => {
    const e = refusal("single_turn", text);
    expect(e.line).toBe(line);
    expect(e.message).toContain(`line ${line}: ${reason}`);
  });
});

describe("multi_turn", () => {
  it("normalizes session_id, turns, delay and output_length", () => {
    const text = jsonl(
      { session_id: "s1", turns: [{ text: "one" }, { text: "two", delay: 250, output_length: 8 }] },
      { turns: [{ texts: ["x", "y"], delay: 0 }] },
    );
    expect(parseDataset("multi_turn", text)).toEqual([
      { sessionId: "s1", turns: [{ text: "one" }, { text: "two", outputLength: 8, delayMs: 250 }] },
      { turns: [{ text: "x\ny", delayMs: 0 }] },
    ]);
  });

  it.each([
    [jsonl({ turns: [] }), 1, "turns must be a non-empty list"],
    [jsonl({ turns: [{ text: "a" }] }, { session_id: 3, turns: [{ text: "a" }] }), 2, "session_id must be a string"],
    [jsonl({ turns: [{ text: 7 }] }), 1, "turns[0].text must be a string"],
    [jsonl({ turns: [{ text: "a" }, {}] }), 1, "turns[1].text is required (a string)"],
    [jsonl({ turns: [{ text: "a", delay: -1 }] }), 1, "turns[0].delay must be a number of milliseconds ≥ 0"],
    [jsonl({ turns: [{ text: "a", audio: "x.wav" }] }), 1, "turns[0].audio: audio is not supported"],
  ])("refuses %s at line %i: %s", (text, line, reason) => {
    expect(refusal("multi_turn", text).message).toContain(`line ${line}: ${reason}`);
  });
});

describe("mooncake_trace", () => {
  it("normalizes timestamp, input_length, output_length and hash_ids", () => {
    const text = jsonl(
      { timestamp: 0, input_length: 100, output_length: 10, hash_ids: [0, 1] },
      { timestamp: 0, input_length: 5, output_length: 1 },
      { hash_ids: [2], output_length: 3, input_length: 7, timestamp: 12.5 },
    );
    expect(parseDataset("mooncake_trace", text)).toEqual([
      { timestamp: 0, inputLength: 100, outputLength: 10, hashIds: [0, 1] },
      { timestamp: 0, inputLength: 5, outputLength: 1 },
      { timestamp: 12.5, inputLength: 7, outputLength: 3, hashIds: [2] },
    ]);
  });

  it("refuses a timestamp earlier than the line before it, saying they must not decrease", () => {
    const text = jsonl({ timestamp: 10, input_length: 1, output_length: 1 }, "", { timestamp: 9, input_length: 1, output_length: 1 });
    expect(refusal("mooncake_trace", text).message).toBe(
      "line 3: timestamp 9 is before the previous line's 10: timestamps must not decrease",
    );
  });

  it.each([
    [jsonl({ input_length: 1, output_length: 1 }), "timestamp is required"],
    [jsonl({ timestamp: 0, input_length: 0, output_length: 1 }), "input_length must be an integer ≥ 1"],
    [jsonl({ timestamp: 0, input_length: 1 }), "output_length must be an integer ≥ 1"],
    [jsonl({ timestamp: 0, input_length: 1, output_length: 1, hash_ids: [1, "2"] }), "hash_ids[1] must be an integer ≥ 0"],
    [jsonl({ timestamp: 0, text_input: "hi", output_length: 1 }), "text_input: is not supported: give input_length (and hash_ids) instead"],
  ])("refuses %s: %s", (text, reason) => {
    expect(refusal("mooncake_trace", text).message).toContain(`line 1: ${reason}`);
  });
});

describe("caps", () => {
  it("refuses a text over the byte cap as too large, counting UTF-8 bytes, not characters", () => {
    const e = refusal("single_turn", jsonl({ text: "é".repeat(40) }), { maxBytes: 60, maxItems: 10 });
    expect(e.tooLarge).toBe(true);
    expect(e.message).toBe("the dataset is larger than 60 bytes");
  });

  it("refuses the first line past the item cap, by its line number", () => {
    const e = refusal("single_turn", jsonl({ text: "a" }, { text: "b" }, "", { text: "c" }), { maxBytes: 1_000, maxItems: 2 });
    expect(e.message).toBe("line 4: more than 2 items");
  });

  it("refuses a file with no items", () => {
    expect(refusal("single_turn", "\n  \n").message).toBe("the dataset has no items (every line is blank)");
  });
});

describe("the content id", () => {
  it("is ds_ and 64 hex digits, the same for the same items however the file spaces or orders them", async () => {
    const a = parseDataset("mooncake_trace", '{"timestamp":0,"input_length":3,"output_length":2}\n');
    const b = parseDataset("mooncake_trace", '\n  { "output_length" : 2, "input_length": 3, "timestamp": 0 }  \n\n');
    const id = await datasetId("mooncake_trace", a);
    expect(id).toMatch(DATASET_ID);
    expect(await datasetId("mooncake_trace", b)).toBe(id);
    expect(canonicalJsonl(b)).toBe('{"timestamp":0,"inputLength":3,"outputLength":2}\n');
  });

  it("differs between types and between contents", async () => {
    const items = parseDataset("single_turn", '{"text":"a"}');
    const other = parseDataset("single_turn", '{"text":"b"}');
    const multi = parseDataset("multi_turn", '{"turns":[{"text":"a"}]}');
    expect(canonicalJsonl(multi)).toBe(canonicalJsonl(items));
    expect(await datasetId("multi_turn", multi)).not.toBe(await datasetId("single_turn", items));
    expect(await datasetId("single_turn", other)).not.toBe(await datasetId("single_turn", items));
  });
});
