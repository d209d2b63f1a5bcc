// Follows an experiment live until it completes, and returns its final results.
//
// The summary long-polls (?wait=1: answered at once when a level starts or ends, else
// after a second), so a level's end is seen as soon as the experiment records it, and
// each level that ended is handed to `onLevelEnd` at once, in order: `--out` writes that
// level's run then, while the run is still in its grace window. Between summaries, the
// current level's run status (with the same read token, which reads every level's run)
// feeds the progress line, as `run` shows a run's.
//
// The summary of a complete experiment is its final results (GET /results adds only
// `final`), so no last call is needed, and an experiment with graceSeconds 0, wiped the
// moment it completes, is still read whole.

import type { ExperimentResults, ExperimentSummary, LevelView } from "../contract/experiment.ts";
import type { ApiClient } from "./api.ts";
import { CliError } from "./errors.ts";
import { levelLine, levelName } from "./experiment-report.ts";
import type { StatusLine } from "./follow.ts";
import { RateMeter, progressLine } from "./progress.ts";
import type { PublicSpec, Snapshot } from "./types.ts";

const SUMMARY_WAIT_S = 1;
/** How long the server may stay unreachable (a restart, a deploy) before following gives up. */
const MAX_OFFLINE_MS = 60_000;
const ENDED = new Set(["complete", "cancelled", "error", "skipped"]);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function experimentPath(id: string): string {
  return `/v1/experiments/${encodeURIComponent(id)}`;
}

export function getExperiment(client: ApiClient, id: string, token: string, waitSeconds: number): Promise<ExperimentSummary> {
  const q = waitSeconds > 0 ? `?wait=${waitSeconds}` : "";
  return client.json("GET", `${experimentPath(id)}${q}`, { token, timeoutMs: 30_000 + waitSeconds * 1000 });
}

export interface FollowExperimentOptions {
  client: ApiClient;
  id: string;
  token: string;
  line: StatusLine;
  /** A level's run was created (its id is known). */
  onLevelStart?: (s: ExperimentSummary, level: LevelView, index: number) => void;
  /** A level ended (complete, cancelled, error or skipped); awaited before the next summary is read. */
  onLevelEnd?: (s: ExperimentSummary, level: LevelView, index: number) => Promise<void>;
}

/** "Level 2 of 3 · concurrency 4" (a search does not know how many levels it will try). */
function levelLabel(s: ExperimentSummary, index: number): string {
  const l = s.levels[index];
  return `Level ${index + 1}${s.kind === "sweep" ? ` of ${s.levels.length}` : ""}${l ? ` · ${levelName(s.over, l.level)}` : ""}`;
}

export async function followExperiment({
  client,
  id,
  token,
  line,
  onLevelStart,
  onLevelEnd,
}: FollowExperimentOptions): Promise<ExperimentResults> {
  const started = new Set<number>();
  const ended = new Set<number>();
  let meter = new RateMeter();
  let meterRun: string | null = null;
  let offlineSince: number | null = null;
  let seen = false;
  let wait = 0;
  // Without a terminal, a line at once when the level or its run's phase changes, else now and then.
  let lastKey = "";
  const update = (text: string, key: string) => {
    line.update(text, key !== lastKey);
    lastKey = key;
  };
  for (;;) {
    let s: ExperimentSummary;
    try {
      s = await getExperiment(client, id, token, wait);
      offlineSince = null;
      seen = true;
    } catch (e) {
      if (e instanceof CliError && e.status === 404 && seen) {
        throw new CliError(`experiment ${id} was wiped before its final results could be read`, { status: 404 });
      }
      if (!(e instanceof CliError && e.transient)) throw e;
      offlineSince ??= Date.now();
      if (Date.now() - offlineSince > MAX_OFFLINE_MS) throw e;
      line.update("experiment: server unreachable, retrying");
      await sleep(1_000);
      continue;
    }
    wait = SUMMARY_WAIT_S;
    // In the order the levels ran: levels a stop skipped are told after the one it cut short.
    for (const [i, l] of s.levels.entries()) {
      if (l.runId !== null && l.status !== "starting" && !started.has(i)) {
        started.add(i);
        onLevelStart?.(s, l, i);
      }
      if (!ENDED.has(l.status)) break;
      if (!ended.has(i)) {
        ended.add(i);
        line.log(levelLine(s, l, i));
        await onLevelEnd?.(s, l, i);
      }
    }
    if (s.phase === "complete") {
      line.finish(`Experiment ${s.status}${s.outcome ? ` (${s.outcome})` : ""}`);
      return { ...s, final: true };
    }

    const index = s.levels.findIndex((l) => l.status === "running" || l.status === "starting");
    const runId = s.current?.runId ?? null;
    if (index < 0) {
      // Between two levels for a moment: worth a line on a terminal, not in a log.
      line.update(`Experiment ${s.phase}: ${s.phase === "draining" ? "stopping" : "choosing the next level"}`);
      continue;
    }
    if (runId === null) {
      update(`${levelLabel(s, index)}: starting`, `${index}`);
      continue;
    }
    if (runId !== meterRun) [meter, meterRun] = [new RateMeter(), runId];
    let snapshot: Snapshot;
    try {
      snapshot = await client.status(runId, token);
    } catch (e) {
      // The summary says how the level ended; a missed progress line is no failure.
      if (e instanceof CliError && (e.transient || e.status === 404)) continue;
      throw e;
    }
    meter.add(
      snapshot.serverTime ? Date.parse(snapshot.serverTime) : Date.now(),
      snapshot.counts.completed + snapshot.counts.failed + snapshot.counts.abandoned,
    );
    const progress = progressLine({ snapshot, spec: s.base as PublicSpec, rate: meter.rate(), bar: line.isTTY });
    update(`${levelLabel(s, index)}  ${progress}`, `${index}.${snapshot.phase}`);
  }
}
