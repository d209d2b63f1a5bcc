// A run's dataset, resolved once when the run is created (README, "Datasets and workloads"):
// the dataset must exist, `workload.replaySpeedup` needs a mooncake_trace, and a trace's
// intended send times are computed here, once, from its timestamps. The coordinator keeps
// only what it needs to hand out item indices (id, type, item count, sampling) and, for a
// trace, the send offsets; agents read the items themselves.

import { replaySlots } from "../contract/dataset-sampling";
import { StatusError } from "../contract/errors";
import type { RunDataset } from "../contract/run-plan";
import type { RunSpec } from "../contract/spec";
import { datasetInfo, loadDatasetItems } from "./dataset-store";

export interface ResolvedDataset {
  dataset: RunDataset;
  /** mooncake_trace: the intended send offset of each item, ms after the measured start. */
  offsets: number[] | null;
}

/** Null for a run without a dataset; a StatusError (400, naming the field) for a bad reference. */
export async function resolveDataset(bucket: R2Bucket | undefined, spec: RunSpec): Promise<ResolvedDataset | null> {
  const ref = spec.workload.dataset;
  if (!ref) return null;
  if (!bucket)
    throw new StatusError(400, "invalid_spec", "workload.dataset: this service has no DATASETS bucket bound (docs/ARCHITECTURE.md).");
  const info = await datasetInfo(bucket, ref.id);
  if (!info)
    throw new StatusError(
      400,
      "invalid_spec",
      `workload.dataset.id: no dataset ${ref.id} on this service (POST /v1/datasets uploads one).`,
    );
  const replay = info.type === "mooncake_trace";
  if (spec.workload.replaySpeedup !== undefined && !replay) {
    throw new StatusError(
      400,
      "invalid_spec",
      `workload.replaySpeedup is only allowed with a mooncake_trace dataset; ${ref.id} is ${info.type}.`,
    );
  }
  if (replay && "rate" in spec.load) {
    throw new StatusError(
      400,
      "invalid_spec",
      "load.rate: a mooncake_trace dataset is replayed on its own timestamps; give load.concurrency (a cap on requests in flight) instead.",
    );
  }
  if (info.type === "multi_turn" && "rate" in spec.load) {
    throw new StatusError(
      400,
      "invalid_spec",
      "load.rate: a multi_turn dataset runs sessions; give load.concurrency (sessions in flight) instead.",
    );
  }
  const dataset: RunDataset = { id: info.id, type: info.type, items: info.items, sampling: ref.sampling, replay };
  if (!replay) return { dataset, offsets: null };
  const items = await loadDatasetItems(bucket, info.id);
  if (!items)
    throw new StatusError(400, "invalid_spec", `workload.dataset.id: dataset ${ref.id} was deleted while the run was being created.`);
  return { dataset, offsets: replaySlots(items, spec.workload.replaySpeedup ?? 1) };
}
