// Datasets in R2 (README, "Datasets and workloads"): one object per dataset at
// `datasets/<id>.jsonl`, holding the normalized items (contract/dataset-format.ts), with
// {type, items, bytes, createdAt} as custom metadata so listing needs no object bodies.
// The id is the content hash, so an object never changes once written; datasets outlive
// runs (nothing here is wiped with a run). The Worker's routes and the Durable Objects
// (edge agents) share these helpers.

import type { DatasetInfo, DatasetItem, DatasetType } from "../contract/dataset";
import { DATASET_ID } from "../contract/dataset";
import { canonicalJsonl, datasetId, isDatasetType, storedItems } from "../contract/dataset-format";

const PREFIX = "datasets/";
export const datasetKey = (id: string) => `${PREFIX}${id}.jsonl`;

/** The info stored with an object; null for an object this module did not write. */
function infoOf(id: string, meta: Record<string, string> | undefined): DatasetInfo | null {
  const items = Number(meta?.items);
  const bytes = Number(meta?.bytes);
  if (!meta || !isDatasetType(meta.type) || !Number.isSafeInteger(items) || !Number.isSafeInteger(bytes) || !meta.createdAt) return null;
  return { id, type: meta.type, items, bytes, createdAt: meta.createdAt };
}

/** A dataset's info, or null when there is none (a malformed id included: R2 is not asked). */
export async function datasetInfo(bucket: R2Bucket, id: string): Promise<DatasetInfo | null> {
  if (!DATASET_ID.test(id)) return null;
  const head = await bucket.head(datasetKey(id));
  return head ? infoOf(id, head.customMetadata) : null;
}

/** A dataset's normalized items, or null when there is none. */
export async function loadDatasetItems(bucket: R2Bucket, id: string): Promise<DatasetItem[] | null> {
  const text = await loadDatasetText(bucket, id);
  return text === null ? null : storedItems(text);
}

/** The stored JSONL as is (what GET /v1/datasets/:id/items serves), or null. */
export async function loadDatasetText(bucket: R2Bucket, id: string): Promise<string | null> {
  if (!DATASET_ID.test(id)) return null;
  const object = await bucket.get(datasetKey(id));
  return object ? object.text() : null;
}

/**
 * Stores validated items under their content id. An existing dataset is answered as it is
 * and nothing is written (`created: false`). Two identical uploads racing may both write:
 * the bytes are the same, only createdAt may move.
 */
export async function storeDataset(
  bucket: R2Bucket,
  type: DatasetType,
  items: readonly DatasetItem[],
  now: Date = new Date(),
): Promise<{ info: DatasetInfo; created: boolean }> {
  const id = await datasetId(type, items);
  const existing = await datasetInfo(bucket, id);
  if (existing) return { info: existing, created: false };
  const body = canonicalJsonl(items);
  const info: DatasetInfo = {
    id,
    type,
    items: items.length,
    bytes: new TextEncoder().encode(body).byteLength,
    createdAt: now.toISOString(),
  };
  await bucket.put(datasetKey(id), body, {
    httpMetadata: { contentType: "application/x-ndjson" },
    customMetadata: { type, items: String(info.items), bytes: String(info.bytes), createdAt: info.createdAt },
  });
  return { info, created: true };
}

/** One page of datasets in id order; `cursor` is R2's, opaque. */
export async function listDatasets(
  bucket: R2Bucket,
  limit: number,
  cursor: string | null,
): Promise<{ datasets: DatasetInfo[]; cursor: string | null }> {
  const page = await bucket.list({ prefix: PREFIX, limit, include: ["customMetadata"], ...(cursor !== null ? { cursor } : {}) });
  const datasets: DatasetInfo[] = [];
  for (const object of page.objects) {
    const id = object.key.slice(PREFIX.length, -".jsonl".length);
    const info = DATASET_ID.test(id) ? infoOf(id, object.customMetadata) : null;
    if (info) datasets.push(info);
  }
  // R2 may return fewer than `limit` and still have more: `truncated` is what says so.
  return { datasets, cursor: page.truncated ? page.cursor : null };
}

/** Deletes a dataset; false when there was none. */
export async function deleteDataset(bucket: R2Bucket, id: string): Promise<boolean> {
  if (!DATASET_ID.test(id)) return false;
  const key = datasetKey(id);
  if (!(await bucket.head(key))) return false;
  await bucket.delete(key);
  return true;
}
