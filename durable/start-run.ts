// Creating a run, for POST /v1/runs (worker/runs.ts) and each experiment level: plan it, register it with the
// Fleet first (so a service drain never misses a run being created), then create its
// RunCoordinator. The Experiment object creates each level's run with it.
//
// Safe to repeat with the same id: the Fleet's admit is INSERT OR IGNORE, and a
// coordinator that already exists answers 409 run_exists, read here as the run's status.
// So a caller that stores the id before calling, and calls again after a failure or an
// eviction, ends up with exactly one run.

import type { Config } from "../contract/config";
import { asResult } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import { planRun } from "../contract/run-plan";
import { publicSpec } from "../contract/spec";
import type { RunSpec } from "../contract/spec";
import type { CreateInit } from "./RunCoordinator";
import { resolveDataset } from "./run-dataset";
import type { Snapshot } from "./views";

export interface StartRun {
  /** From RUN_COORDINATOR.newUniqueId(), as a string. */
  runId: string;
  spec: RunSpec;
  cfg: Config;
  readTokenHash: string;
  agentTokenHash: string;
  /** The service's origin as the creating request reached it: where edge agents ask for their colo. */
  origin?: string;
  notifySecret?: string;
}

/** Registers and creates the run; a refusal (503 service_draining, …) comes back as a value. Throws only on faults. */
export async function startRun(env: Env, r: StartRun, now = Date.now()): Promise<RpcResult<Snapshot>> {
  // The dataset is checked before anything is registered: a bad reference leaves nothing behind.
  const dataset = await asResult(() => resolveDataset(env.DATASETS, r.spec));
  if (!dataset.ok) return dataset;
  const resolved = dataset.value;
  const fleet = env.FLEET.get(env.FLEET.idFromName("fleet"));
  const admitted = await fleet.admit(r.runId, now);
  if (!admitted.ok) return admitted;
  const plan = planRun(r.runId, r.spec, r.cfg);
  if (resolved) {
    plan.config.dataset = resolved.dataset;
    // A trace replay ends with the trace: at most one request per item.
    if (resolved.offsets) plan.limits.requests = Math.min(plan.limits.requests ?? resolved.offsets.length, resolved.offsets.length);
  }
  const init: CreateInit = {
    plan,
    ...(resolved?.offsets ? { replayOffsets: resolved.offsets } : {}),
    spec: r.spec,
    publicSpec: publicSpec(r.spec),
    readTokenHash: r.readTokenHash,
    agentTokenHash: r.agentTokenHash,
    ...(r.origin ? { origin: r.origin } : {}),
    ...(r.notifySecret ? { notifySecret: r.notifySecret } : {}),
  };
  const stub = env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.idFromString(r.runId));
  let created: RpcResult<Snapshot>;
  try {
    created = (await stub.create(init)) as RpcResult<Snapshot>;
  } catch (e) {
    // Whether it was created is unknown: a repeat with the same id settles it.
    await fleet.ended(r.runId).catch(() => {});
    throw e;
  }
  if (created.ok) return created;
  // A repeat after an answer that was lost: the run exists.
  if (created.status === 409 && created.code === "run_exists") return (await stub.status({ role: "api" })) as RpcResult<Snapshot>;
  await fleet.ended(r.runId);
  return created;
}
