// Handlers for /v1/datasets (README, "Datasets and workloads"): upload (validated line by
// line, stored in R2 under its content hash), list, info, items and delete. Ids are checked
// before R2 is touched; the storage itself is durable/dataset-store.ts.

import type { IRequest } from "itty-router";
import type { DatasetInfo } from "../contract/dataset";
import { DATASET_ID, DATASET_TYPES } from "../contract/dataset";
import { DatasetError, isDatasetType, MAX_DATASET_ITEMS, parseDataset } from "../contract/dataset-format";
import { readConfig } from "../contract/config";
import { readBounded } from "../contract/body";
import { StatusError, unwrap } from "../contract/errors";
import type { RpcResult } from "../contract/errors";
import type { Auth } from "../contract/tokens";
import { datasetInfo, deleteDataset, listDatasets, loadDatasetText, storeDataset } from "../durable/dataset-store";
import { limitParam } from "./admin";
import { requireApiToken, runAuth } from "./auth";
import { coordinator } from "./runs";

const NDJSON = /^application\/x-ndjson\s*(;|$)/i;

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } });

const notFound = () => new StatusError(404, "dataset_not_found", "No such dataset (it may have been deleted).");

/** The :id of the route, checked before R2 is asked anything. */
function idParam(request: IRequest): string {
  const id = request.params.id ?? "";
  if (!DATASET_ID.test(id))
    throw new StatusError(400, "invalid_dataset_id", "The dataset id must be ds_ followed by 64 lowercase hex digits.");
  return id;
}

/** The body as UTF-8 text, refused with 413 past `maxBytes` while streaming (a false Content-Length cannot get past). */
async function readText(request: Request, maxBytes: number): Promise<string> {
  const tooLarge = () => new StatusError(413, "body_too_large", `The dataset is larger than ${maxBytes} bytes.`);
  const { bytes } = await readBounded(request, maxBytes, tooLarge);
  if (bytes.byteLength === 0) throw new StatusError(400, "invalid_dataset", "The request body is empty: send the dataset's JSONL lines.");
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new StatusError(400, "invalid_dataset", "The body is not valid UTF-8.");
  }
}

export async function uploadDataset(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  const type = new URL(request.url).searchParams.get("type");
  if (!isDatasetType(type)) {
    const got = type === null ? "missing" : `"${type.slice(0, 40)}"`;
    throw new StatusError(400, "invalid_query", `type must be one of ${DATASET_TYPES.join(", ")} (got ${got}).`);
  }
  if (!NDJSON.test(request.headers.get("content-type") ?? "")) {
    throw new StatusError(
      415,
      "unsupported_media_type",
      "Send the dataset as 'Content-Type: application/x-ndjson' (one JSON object a line).",
    );
  }
  const maxBytes = readConfig(env).maxDatasetBytes;
  const text = await readText(request, maxBytes);
  let items;
  try {
    items = parseDataset(type, text, { maxBytes, maxItems: MAX_DATASET_ITEMS });
  } catch (e) {
    if (e instanceof DatasetError)
      throw new StatusError(e.tooLarge ? 413 : 400, e.tooLarge ? "dataset_too_large" : "invalid_dataset", e.message);
    throw e;
  }
  const { info, created } = await storeDataset(env.DATASETS, type, items);
  return json(info, created ? 201 : 200, { location: `${new URL(request.url).origin}/v1/datasets/${info.id}` });
}

// The cursor is R2's own, passed through: opaque to clients, only its round trip is promised.
function cursorParam(url: URL): string | null {
  const raw = url.searchParams.get("cursor");
  if (raw === null) return null;
  if (!/^[\x21-\x7e]{1,1024}$/.test(raw)) {
    throw new StatusError(400, "invalid_query", "cursor is not one this server issued: pass nextCursor from the previous page.");
  }
  return raw;
}

export async function listDatasetsRoute(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  const url = new URL(request.url);
  const limit = limitParam(url);
  const cursor = cursorParam(url);
  let page: { datasets: DatasetInfo[]; cursor: string | null };
  try {
    page = await listDatasets(env.DATASETS, limit, cursor);
  } catch (e) {
    // R2 refuses a cursor it did not issue; anything else is ours to log.
    if (cursor !== null)
      throw new StatusError(400, "invalid_query", "cursor is not one this server issued: pass nextCursor from the previous page.");
    throw e;
  }
  return json({ datasets: page.datasets, nextCursor: page.cursor });
}

export async function getDataset(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  const info = await datasetInfo(env.DATASETS, idParam(request));
  if (!info) throw notFound();
  return json(info);
}

/**
 * The items, for agents. The API token reads any dataset. An external agent holds only its
 * run's agent token: with `?run=RUN_ID` it reads the one dataset that run uses, and the
 * run's coordinator checks the token; any other dataset is 404 to it.
 */
export async function getDatasetItems(request: IRequest, env: Env): Promise<Response> {
  const apiToken = readConfig(env).apiToken;
  const id = idParam(request);
  const run = new URL(request.url).searchParams.get("run");
  if (run === null) await requireApiToken(request, apiToken);
  else {
    const auth = await runAuth(request, apiToken);
    if (auth.role !== "api") {
      const stub = coordinator(env, run);
      if (unwrap(await stub.datasetOf(auth)) !== id) throw notFound();
    }
  }
  const text = await loadDatasetText(env.DATASETS, id);
  if (text === null) throw notFound();
  // The id is the content's hash: the body under it never changes.
  return new Response(text, {
    headers: { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "private, max-age=31536000, immutable" },
  });
}

export async function deleteDatasetRoute(request: IRequest, env: Env): Promise<Response> {
  await requireApiToken(request, readConfig(env).apiToken);
  if (!(await deleteDataset(env.DATASETS, idParam(request)))) throw notFound();
  return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
}
