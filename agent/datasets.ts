// Where an agent gets a dataset's items (README, "Datasets and workloads"). The coordinator
// hands out item indices with the credits and never serves the data: an edge agent reads
// the items from R2 through its binding, an external agent from the Worker
// (GET /v1/datasets/:id/items). Either way they are read once and kept: a dataset's id is
// its content hash, so a cached copy can never be stale.

import type { DatasetItem } from "../contract/dataset";
import { storedItems } from "../contract/dataset-format";

/** Reads a dataset's items; null when it does not exist (deleted after the run started). */
export type DatasetLoader = (id: string) => Promise<DatasetItem[] | null>;

/** Datasets kept per cache (a run uses one; a few cover agents of consecutive runs in one isolate). */
const KEEP = 4;

/**
 * A loader that reads each dataset once: concurrent requests for the same id share one
 * read, and a failed read is not kept, so the next request tries again.
 */
export function cachedLoader(load: DatasetLoader): DatasetLoader {
  const cache = new Map<string, Promise<DatasetItem[] | null>>();
  return (id) => {
    const hit = cache.get(id);
    if (hit) {
      cache.delete(id); // most recently used last
      cache.set(id, hit);
      return hit;
    }
    const p = load(id);
    cache.set(id, p);
    p.then(
      (items) => {
        if (items === null) cache.delete(id);
      },
      () => cache.delete(id),
    );
    while (cache.size > KEEP) {
      const oldest = cache.keys().next().value;
      if (oldest === undefined) break;
      cache.delete(oldest);
    }
    return p;
  };
}

/** An external agent's loader: the Worker's items route, with the run's agent token. */
export function httpLoader(opts: { server: string; token: string; runId: string; fetch?: typeof fetch }): DatasetLoader {
  const f = opts.fetch ?? fetch;
  return async (id) => {
    const url = `${opts.server}/v1/datasets/${encodeURIComponent(id)}/items?run=${encodeURIComponent(opts.runId)}`;
    const res = await f(url, { headers: { authorization: `Bearer ${opts.token}` } });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`reading dataset ${id}: HTTP ${res.status}`);
    return storedItems(await res.text());
  };
}
