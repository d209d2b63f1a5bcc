// What the Experiment object does to a level's run, each as a function that calls the
// run and answers the experiment's next state (experiment-machine.ts) for the object to
// commit: create it, tell it to stop, give up a creation the experiment no longer wants,
// and read its final results. A fault (an unreachable object) throws, and the alarm tries
// again; a refusal is part of the answer.

import { readConfig } from "../contract/config";
import { StatusError } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import { parseLevelSpec } from "../contract/experiment";
import type { ExperimentPlan } from "../contract/experiment";
import type { Results } from "../contract/results";
import type { Auth } from "../contract/tokens";
import * as m from "./experiment-machine";
import type { ExperimentState, LevelRecord } from "./experiment-machine";
import type { Secrets } from "./experiment-store";
import { levelRecordOf } from "./experiment-views";
import { startRun } from "./start-run";

/** The experiment reads and stops its levels' runs as the service itself. */
const API: Auth = { role: "api" };

export type Refusal = { status: number; code: string; message: string };

function runStub(env: Env, runId: string) {
  return env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(runId));
}

function current(s: ExperimentState): LevelRecord & { runId: string } {
  const cur = m.currentLevel(s);
  if (!cur?.runId) throw new Error("the experiment has no current level with a run id");
  return { ...cur, runId: cur.runId };
}

/**
 * Creates the current level's run (again, with the same stored id, after a fault). A
 * refusal (503 service_draining, a cap lowered since the door) ends the experiment.
 */
export async function createLevelRun(
  env: Env,
  s: ExperimentState,
  plan: ExperimentPlan,
  secrets: Secrets,
  now: number,
): Promise<{ next: ExperimentState; refused: Refusal | null }> {
  const cur = current(s);
  const cfg = readConfig(env);
  const label = plan.kind === "sweep" ? `levels.${plan.over}[${s.current}]` : `search level ${cur.level}`;
  let answer: RpcResult<{ createdAt: string }>;
  try {
    // Parsed again against today's caps: an operator may have lowered one since the door.
    const spec = parseLevelSpec(plan.base, plan.over, cur.level, label, cfg);
    answer = await startRun(env, {
      runId: cur.runId,
      spec,
      cfg,
      readTokenHash: secrets.read,
      agentTokenHash: secrets.agent,
      ...(secrets.origin ? { origin: secrets.origin } : {}),
    });
  } catch (e) {
    if (!(e instanceof StatusError)) throw e;
    answer = { ok: false, status: e.status, code: e.code, message: e.message };
  }
  if (!answer.ok) {
    const refused = { status: answer.status, code: answer.code, message: answer.message };
    return { next: m.levelRefused(s, { code: answer.code, message: answer.message }, now), refused };
  }
  return { next: m.levelStarted(s, answer.value.createdAt, now), refused: null };
}

/** Tells the current level's run to stop in the experiment's stop mode. */
export async function stopLevelRun(env: Env, s: ExperimentState): Promise<ExperimentState> {
  const answer = await runStub(env, current(s).runId).stop(API, s.stopMode);
  // 404: the run is gone already; the poll records that.
  return answer.ok || answer.status === 404 ? m.stopSent(s) : s;
}

/**
 * The experiment stopped while a level's run was being created after a fault: if the
 * run exists it is force-stopped and waited for like any level, else the level is skipped.
 */
export async function abandonLevelRun(env: Env, s: ExperimentState, now: number): Promise<ExperimentState> {
  const { runId } = current(s);
  const answer = (await runStub(env, runId).stop(API, "force")) as RpcResult<{ createdAt: string }>;
  if (answer.ok) return m.stopSent(m.levelStarted(s, answer.value.createdAt, now));
  if (answer.status !== 404) throw new Error(`stopping a level's run: ${answer.status} ${answer.code}`);
  // Never created; it may have been admitted before the fault.
  await env.FLEET.get(env.FLEET.idFromName("fleet")).ended(runId);
  return m.levelSkipped(s, now);
}

/** The level's run's final results, if it is complete: what the experiment keeps of it; null while it runs. */
export async function pollLevelRun(env: Env, runId: string, waitMs: number, plan: ExperimentPlan): Promise<Partial<LevelRecord> | null> {
  const answer = (await runStub(env, runId).results(API, waitMs)) as RpcResult<Results>;
  if (answer.ok) return answer.value.phase === "complete" ? levelRecordOf(answer.value, plan.search?.slo ?? null) : null;
  if (answer.status !== 404) return null;
  return { status: "error", error: { code: "results_lost", message: "The level's run was wiped before the experiment read its results." } };
}
