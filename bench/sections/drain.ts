// Drain and grace (issue 7 §4):
//   lastSettleToCompleteMs  an external agent (plain HTTP, as curl would) settles the
//                           run's last credit while a long-poll waiter
//                           (GET /results?wait=30) is parked; from the settle (the run's
//                           completedAt, stamped by the coordinator in the turn that
//                           settles the last credit) to the waiter's answer arriving with
//                           phase "complete". Also kept: from sending that report (an
//                           upper bound that includes the report's own trip in), and the
//                           report's round trip"
//   stopToNoNewSendsMs      edge agents on a target that answers in 20 ms; from
//                           POST /stop (graceful) to the last request to arrive at the
//                           target, as the target's clock saw it
//   grace                   after completion, GET /v1/runs/:id (every 50 ms, every 2 ms
//                           around the expected end): the window's end lies between the
//                           last `complete` seen (request sent) and the first 404
//                           (answer received); visibleSeconds is the middle of that
//                           bracket, goneSeconds its end
// Every time here is one machine's clock (epoch ms with sub-ms precision); completedAt
// comes from workerd on the same machine.
import type { Target } from "../lib/util.ts";
import { epoch, log, percentile, round, sleep } from "../lib/util.ts";
import type { DevServer } from "../lib/edgeperf.ts";
import { API_TOKEN, api, createRun, waitComplete } from "../lib/edgeperf.ts";

export interface DrainOut {
  trials: Array<{ lastSettleToCompleteMs: number; reportSentToSeenMs: number; reportRoundTripMs: number; sameRequest: boolean }>;
  lastSettleToCompleteMs: number | null;
  lastSettleToCompleteP50Ms: number | null;
  stopTrials: Array<{ stopToNoNewSendsMs: number; stopToCompleteMs: number; inFlightAtStop: number }>;
  stopToNoNewSendsMs: number | null;
}

export interface GraceOut {
  graceSeconds: number;
  trials: Array<{ visibleSeconds: number; lastVisibleSeconds: number; goneSeconds: number }>;
  /** The shortest window seen (middle of its bracket), and the latest 404. */
  visibleSeconds: number | null;
  goneSeconds: number | null;
  /** Met when no 404 was answered before graceSeconds had passed. */
  neverGoneEarly: boolean;
}

/** One run of 16 requests settled by hand; resolves when the long-poll waiter answered. */
async function lastSettleTrial(server: DevServer, graceSeconds: number) {
  const run = await createRun(server, {
    target: { url: "builtin:mock" },
    load: { concurrency: 8 },
    stop: { requests: 16 },
    agents: { edge: 0 },
    graceSeconds,
  });
  const path = `/v1/runs/${run.id}`;
  const agentId = (await api(server.url, "POST", `${path}/agents`, run.agentToken, { name: "bench" })).body.agentId as string;
  const lease = await api(server.url, "POST", `${path}/leases`, run.agentToken, { agentId, requestId: "l1", want: 16 });
  const seqs = (lease.body.credits as Array<{ seq: number }>).map((c) => c.seq);
  if (seqs.length !== 16) throw new Error(`expected 16 credits, got ${JSON.stringify(lease.body)}`);
  const ok = (seq: number) => ({ seq, ok: true, latencyMs: 40, ttftMs: 10, inputTokens: 100, outputTokens: 8 });
  await api(server.url, "POST", `${path}/reports`, run.agentToken, {
    agentId,
    reportId: "r1",
    inflight: 1,
    results: seqs.slice(0, 15).map(ok),
  });
  let seenAt = 0;
  const waiter = api(server.url, "GET", `${path}/results?wait=30`, run.readToken).then((r) => {
    seenAt = epoch();
    return r;
  });
  await sleep(300); // the waiter is parked in the coordinator by now
  const sentAt = epoch();
  const last = await api(server.url, "POST", `${path}/reports`, run.agentToken, {
    agentId,
    reportId: "r2",
    inflight: 0,
    results: seqs.slice(15).map(ok),
  });
  const answeredAt = epoch();
  const seen = await waiter;
  if (seen.body.phase !== "complete") throw new Error(`waiter saw ${seen.body.phase}`);
  const completedAt = Date.parse(seen.body.completedAt as string);
  return {
    run,
    completedAt,
    lastSettleToCompleteMs: seenAt - completedAt,
    reportSentToSeenMs: seenAt - sentAt,
    reportRoundTripMs: answeredAt - sentAt,
    // The completing report's answer already says stop, and the waiter saw exactly its results.
    sameRequest: last.body.stop === true && seen.body.counts.completed === 16,
  };
}

/** Polls the run's status from completion until 404: every 50 ms, every 2 ms near the end. */
async function graceTrial(server: DevServer, run: { id: string; readToken: string }, completedAt: number, graceSeconds: number) {
  let lastVisible = completedAt;
  const end = completedAt + graceSeconds * 1000;
  for (;;) {
    const sent = epoch();
    const s = await api(server.url, "GET", `/v1/runs/${run.id}`, run.readToken);
    const t = epoch();
    if (s.status === 200 && s.body.status === "complete") lastVisible = sent;
    else if (s.status === 404) {
      return {
        visibleSeconds: ((lastVisible + t) / 2 - completedAt) / 1000,
        lastVisibleSeconds: (lastVisible - completedAt) / 1000,
        goneSeconds: (t - completedAt) / 1000,
      };
    } else throw new Error(`status during grace: ${s.status} ${JSON.stringify(s.body)}`);
    if (t - completedAt > (graceSeconds + 30) * 1000) throw new Error("run never wiped");
    await sleep(t > end - 300 ? 2 : 50);
  }
}

async function stopTrial(server: DevServer, target: Target) {
  const run = await createRun(server, {
    target: { url: `${target.url}/delay/20`, api: "http", method: "GET" },
    load: { concurrency: 32 },
    stop: { durationSeconds: 120 },
    agents: { edge: 2 },
    graceSeconds: 30,
  });
  await sleep(3000);
  const before = await target.stats();
  const stopAt = epoch();
  const stop = await api(server.url, "POST", `/v1/runs/${run.id}/stop`, API_TOKEN, { mode: "graceful" });
  if (stop.status !== 202) throw new Error(`stop: ${stop.status} ${JSON.stringify(stop.body)}`);
  const res = await waitComplete(server, run);
  await sleep(500); // nothing should arrive now; give a straggler the chance to show
  const after = await target.stats();
  return {
    stopToNoNewSendsMs: (after.lastArrival ?? stopAt) - stopAt,
    stopToCompleteMs: Date.parse(res.completedAt as string) - stopAt,
    inFlightAtStop: (stop.body.counts?.outstanding as number | undefined) ?? 0,
    arrivedBefore: before.count,
  };
}

export async function drainAndGrace(server: DevServer, target: Target, quick: boolean): Promise<{ drain: DrainOut; grace: GraceOut }> {
  const graceSeconds = quick ? 3 : 5;
  const trials: DrainOut["trials"] = [];
  const graceTrials: GraceOut["trials"] = [];
  const n = quick ? 5 : 20;
  for (let i = 0; i < n; i++) {
    const t = await lastSettleTrial(server, graceSeconds);
    trials.push({
      lastSettleToCompleteMs: round(t.lastSettleToCompleteMs, 2)!,
      reportSentToSeenMs: round(t.reportSentToSeenMs, 2)!,
      reportRoundTripMs: round(t.reportRoundTripMs, 2)!,
      sameRequest: t.sameRequest,
    });
    // The grace window is watched on the first trials (it takes graceSeconds each).
    if (i < (quick ? 1 : 3)) graceTrials.push(await graceTrial(server, t.run, t.completedAt, graceSeconds));
  }
  log(
    `drain: last settle → complete seen ${trials.map((t) => t.lastSettleToCompleteMs).join(", ")} ms (report sent → seen ${trials.map((t) => t.reportSentToSeenMs).join(", ")} ms)`,
  );
  log(`grace: ${JSON.stringify(graceTrials)}`);
  const stopTrials: DrainOut["stopTrials"] = [];
  for (let i = 0; i < (quick ? 2 : 5); i++) {
    await target.reset();
    const s = await stopTrial(server, target);
    stopTrials.push({
      stopToNoNewSendsMs: round(s.stopToNoNewSendsMs, 2)!,
      stopToCompleteMs: round(s.stopToCompleteMs, 1)!,
      inFlightAtStop: s.inFlightAtStop,
    });
    log(`drain: stop → last new send ${stopTrials.at(-1)!.stopToNoNewSendsMs} ms, → complete ${stopTrials.at(-1)!.stopToCompleteMs} ms`);
  }
  const settle = trials.map((t) => t.lastSettleToCompleteMs);
  return {
    drain: {
      trials,
      lastSettleToCompleteMs: round(Math.max(...settle), 2),
      lastSettleToCompleteP50Ms: round(percentile(settle, 50), 2),
      stopTrials,
      stopToNoNewSendsMs: round(Math.max(...stopTrials.map((t) => t.stopToNoNewSendsMs)), 2),
    },
    grace: {
      graceSeconds,
      trials: graceTrials.map((g) => ({
        visibleSeconds: round(g.visibleSeconds, 3)!,
        lastVisibleSeconds: round(g.lastVisibleSeconds, 3)!,
        goneSeconds: round(g.goneSeconds, 3)!,
      })),
      visibleSeconds: round(Math.min(...graceTrials.map((g) => g.visibleSeconds)), 3),
      goneSeconds: round(Math.max(...graceTrials.map((g) => g.goneSeconds)), 3),
      neverGoneEarly: graceTrials.every((g) => g.goneSeconds >= graceSeconds),
    },
  };
}
