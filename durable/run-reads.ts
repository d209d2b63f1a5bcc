// What RunCoordinator reads out of a loaded run: the status snapshot and the results
// document put together from the store and the merged metrics (views.ts builds them),
// the flags every agent answer carries, and the live threshold check behind
// abortOnThresholdFail. Nothing here writes; the coordinator decides what a read leads to.

import type { SessionCounts } from "../contract/results";
import type { RunConfig } from "../contract/run-plan";
import type { RunSpec } from "../contract/spec";
import { regionOf } from "./region-results";
import type { RunState } from "./run-machine";
import { isAccepting } from "./run-machine";
import type { RunResults } from "./run-results";
import type { AgentRow } from "./rows";
import type { RunStore } from "./run-store";
import { benchmarkDurationMs, buildResults, buildSnapshot, evaluateThresholds } from "./views";
import type { Results, Snapshot } from "./views";

/** A run as one call sees it: its state and config, its stores, and the call's `now`. */
export interface LoadedRun {
  state: RunState;
  config: RunConfig;
  spec: RunSpec | null;
  store: RunStore;
  measured: RunResults;
  now: number;
}

/** The region an agent's results count under (region-results.ts). */
export function regionKey(store: RunStore, agent: AgentRow): string {
  return regionOf(agent, store.colos()[agent.ord]);
}

export function snapshotOf(r: LoadedRun): Snapshot {
  const { state, config, store, measured, now } = r;
  const durationMs = benchmarkDurationMs(state, now);
  const delivered = measured.deliveredNow().view(config, durationMs);
  const agents = store.agents();
  const regions = measured.regions.view(
    durationMs,
    agents.map((a) => ({ key: regionKey(store, a) })),
  );
  const joined = { colos: store.colos(), ticks: store.clockTicks() };
  return buildSnapshot(config.id, state, agents, joined, measured.metricsNow(), delivered, regions, sessionCounts(store, config), now);
}

export function resultsOf(r: LoadedRun): Results {
  const series = r.measured.seriesNow().view();
  return buildResults(
    snapshotOf(r),
    r.state,
    r.measured.metricsNow(),
    r.spec?.thresholds ?? {},
    r.store.getMeta<unknown>("publicSpec"),
    series,
    r.config,
  );
}

/** A multi_turn run's session counts (meta "sessions"), summed from reports in their own transactions. */
export function sessionCounts(store: RunStore, config: RunConfig): SessionCounts | null {
  if (config.dataset?.type !== "multi_turn") return null;
  return store.getMeta<SessionCounts>("sessions") ?? { started: 0, completed: 0, cut: 0 };
}

/** `stop` from the drain's first instant; `finishLeased` when held credits should still be sent. */
export function stopFlags(state: RunState | null): { stop: boolean; finishLeased: boolean } {
  const stop = !state || !isAccepting(state);
  return { stop, finishLeased: stop && state?.stopReason === "budget" };
}

/**
 * Like k6's abortOnFail: whether a threshold fails on the merged distribution now. A
 * region with no results yet is not failing while the run goes on: its agents may simply
 * not have reported (at the end it has no value, and the threshold fails).
 */
export function thresholdsFailing(r: LoadedRun, thresholds: Record<string, string>): boolean {
  const durationMs = benchmarkDurationMs(r.state, r.now);
  const doc = r.measured.metricsNow().document(durationMs);
  const keys = Object.keys(thresholds);
  const regional = keys.some((k) => k.includes("{region:"));
  const regions = regional ? r.measured.regions.documents(durationMs) : new Map();
  return evaluateThresholds(doc, thresholds, regions).some((t, i) => !t.ok && !(t.value === null && (keys[i] ?? "").includes("{region:")));
}
