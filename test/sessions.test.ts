// multi_turn sessions (README, "Datasets and workloads"): the agent engine against the real
// coordinator (the Worker in this isolate) and a fake target at the edge that answers each
// request with text of its own. Concurrency counts sessions; each turn carries the
// earlier prompts and the target's real answers; the ledger counts turns; a budget that
// runs out or a stop ends sessions between turns, counted as cut and never twice. The
// engine reads the dataset the way an external agent does: GET /v1/datasets/:id/items
// with the run's agent token.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { cachedLoader, httpLoader } from "../agent/datasets";
import { AgentEngine } from "../agent/engine";
import { httpTransport, withRetries } from "../agent/transport";
import { call, createRun, expectLedger, status } from "./helpers";
import type { TestRun } from "./helpers";

const BASE = "https://edgeperf.test";
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const worker: typeof fetch = (input, init) => exports.default.fetch(new Request(input, init));

type Message = { role: string; content: string };

/** Answers chat completions (not streamed) with "answer-<n>"; records each request's messages and the sessions in flight. */
class ChatTarget {
  seen: Array<{ messages: Message[]; answer: string }> = [];
  inflight = 0;
  maxInflight = 0;
  /** `slow`: how long the turns of the session whose prompts start with that letter take (ms); others take 2. */
  constructor(private readonly slow: Record<string, number> = {}) {}
  fetch: typeof fetch = async (_input, init) => {
    const body = JSON.parse(String(init?.body)) as { messages: Message[] };
    const answer = `answer-${this.seen.length}`;
    this.seen.push({ messages: body.messages, answer });
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    await pause(this.slow[body.messages[0]!.content[0]!] ?? 2);
    this.inflight--;
    return Response.json({ choices: [{ index: 0, message: { role: "assistant", content: answer } }], usage: { completion_tokens: 1 } });
  };
}

const SESSIONS = ["a", "b", "c", "d"].map((id) => ({
  session_id: id,
  turns: [{ text: `${id}1` }, { text: `${id}2`, delay: 5 }, { text: `${id}3` }],
}));

async function upload(lines: unknown[]): Promise<string> {
  const res = await call("POST", "/v1/datasets?type=multi_turn", {
    rawBody: lines.map((l) => JSON.stringify(l)).join("\n"),
    contentType: "application/x-ndjson",
  });
  expect([200, 201]).toContain(res.status);
  return res.body.id;
}

function engine(run: TestRun, target: ChatTarget) {
  return new AgentEngine({
    transport: withRetries(httpTransport({ server: BASE, runId: run.id, token: run.agentToken, fetch: worker }), { sleep: () => pause(1) }),
    fetchTarget: target.fetch,
    resolveUrl: () => "https://llm.example.com/v1/chat/completions",
    datasets: cachedLoader(httpLoader({ server: BASE, token: run.agentToken, runId: run.id, fetch: worker })),
  });
}

async function runToEnd(run: TestRun, target: ChatTarget, during?: () => Promise<void>) {
  const e = engine(run, target);
  await e.join();
  const done = (async () => {
    while ((await e.runSlice({})) !== "done") {
      /* continue */
    }
  })();
  if (during) await during();
  await done;
  return (await status(run)).body;
}

const lastUser = (m: Message[]) => m[m.length - 1]!.content;

describe("a multi_turn run", () => {
  it("runs sessions as many at a time as load.concurrency, each turn carrying the earlier prompts and real answers", async () => {
    const id = await upload(SESSIONS);
    const run = await createRun({
      workload: { dataset: { id } },
      load: { concurrency: 2 },
      stop: { requests: 12 },
      target: { url: "https://llm.example.com", model: "m" },
    });
    const target = new ChatTarget();
    const s = await runToEnd(run, target);
    expect(s.counts).toMatchObject({ granted: 12, completed: 12, failed: 0 });
    expectLedger(s.counts);
    expect(s.sessions).toEqual({ started: 4, completed: 4, cut: 0 });
    expect(target.maxInflight).toBeLessThanOrEqual(2);
    // Every turn after the first carries the whole conversation so far, with the answers the target gave.
    const byText = new Map(target.seen.map((x) => [lastUser(x.messages), x]));
    expect([...byText.keys()].sort()).toEqual(SESSIONS.flatMap((x) => x.turns.map((t) => t.text)).sort());
    for (const { session_id: sid } of SESSIONS) {
      const t1 = byText.get(`${sid}1`)!;
      const t2 = byText.get(`${sid}2`)!;
      const t3 = byText.get(`${sid}3`)!;
      expect(t1.messages).toEqual([{ role: "user", content: `${sid}1` }]);
      expect(t2.messages).toEqual([
        { role: "user", content: `${sid}1` },
        { role: "assistant", content: t1.answer },
        { role: "user", content: `${sid}2` },
      ]);
      expect(t3.messages).toEqual([...t2.messages, { role: "assistant", content: t2.answer }, { role: "user", content: `${sid}3` }]);
    }
    // Sessions in flight, at the target: never more than 2 distinct conversations open at once.
    let open = 0;
    let most = 0;
    for (const x of target.seen) {
      const turn = Number(lastUser(x.messages).slice(1));
      if (turn === 1) open++;
      most = Math.max(most, open);
      if (turn === 3) open--;
    }
    expect(most).toBeLessThanOrEqual(2);
  });

  it("keeps the last credits of a budget for the sessions under way instead of starting one that would be cut", async () => {
    // Budget 12 = four sessions of three turns, two at a time; a fifth session is in the
    // dataset. Session b is slow: a, c and d finish while b is still on its first turn,
    // holding the budget's last two credits. They are b's remaining turns; spending one on
    // session e would cut both b and e.
    const id = await upload([...SESSIONS, { session_id: "e", turns: [{ text: "e1" }, { text: "e2" }, { text: "e3" }] }]);
    const run = await createRun({
      workload: { dataset: { id } },
      load: { concurrency: 2 },
      stop: { requests: 12 },
      target: { url: "https://llm.example.com", model: "m" },
    });
    const target = new ChatTarget({ b: 300 });
    const s = await runToEnd(run, target);
    expect(s.counts).toMatchObject({ granted: 12, completed: 12, failed: 0 });
    expectLedger(s.counts);
    expect(s.sessions).toEqual({ started: 4, completed: 4, cut: 0 });
    expect(target.seen.map((x) => lastUser(x.messages)).filter((t) => t.startsWith("e"))).toEqual([]);
  });

  it("ends sessions between turns when the budget runs out: they are cut, and nothing is counted twice", async () => {
    const id = await upload(SESSIONS);
    const run = await createRun({
      workload: { dataset: { id } },
      load: { concurrency: 2 },
      stop: { requests: 5 },
      target: { url: "https://llm.example.com", model: "m" },
    });
    const target = new ChatTarget();
    const s = await runToEnd(run, target);
    expect(s.counts).toMatchObject({ completed: 5, failed: 0 });
    expectLedger(s.counts);
    expect(target.seen).toHaveLength(5);
    expect(s.sessions.started).toBe(s.sessions.completed + s.sessions.cut);
    expect(s.sessions.cut).toBeGreaterThan(0);
    // A cut session sent a prefix of its turns, in order.
    const sent = new Set(target.seen.map((x) => lastUser(x.messages)));
    for (const { session_id: sid } of SESSIONS) {
      if (sent.has(`${sid}3`)) expect(sent.has(`${sid}2`)).toBe(true);
      if (sent.has(`${sid}2`)) expect(sent.has(`${sid}1`)).toBe(true);
    }
  });

  it("ends sessions between turns on a stop", async () => {
    const long = [{ session_id: "x", turns: Array.from({ length: 50 }, (_, i) => ({ text: `x${i}`, delay: 20 })) }];
    const id = await upload(long);
    const run = await createRun({
      workload: { dataset: { id } },
      load: { concurrency: 1 },
      stop: { requests: 1000 },
      target: { url: "https://llm.example.com", model: "m" },
    });
    const target = new ChatTarget();
    const s = await runToEnd(run, target, async () => {
      while (target.seen.length < 3) await pause(5);
      const stop = await call("POST", `/v1/runs/${run.id}/stop`, { body: { mode: "graceful" } });
      expect(stop.status).toBeLessThan(300);
    });
    expect(s.sessions).toEqual({ started: 1, completed: 0, cut: 1 });
    expect(s.counts.completed).toBe(target.seen.length);
    expect(target.seen.length).toBeLessThan(50);
    expectLedger(s.counts);
  });
});

describe("GET /v1/datasets/:id/items with a run's agent token", () => {
  it("reads the run's own dataset and nothing else", async () => {
    const id = await upload(SESSIONS);
    const other = await upload([{ turns: [{ text: "other" }] }]);
    const run = await createRun({ workload: { dataset: { id } } });
    const own = await call("GET", `/v1/datasets/${id}/items?run=${run.id}`, { token: run.agentToken });
    expect(own.status).toBe(200);
    expect(String(own.body).split("\n").filter(Boolean)).toHaveLength(4);
    expect((await call("GET", `/v1/datasets/${other}/items?run=${run.id}`, { token: run.agentToken })).status).toBe(404);
    expect((await call("GET", `/v1/datasets/${id}/items?run=${run.id}`, { token: run.readToken })).status).toBe(404);
  });
});
