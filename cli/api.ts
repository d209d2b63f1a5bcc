// The HTTP client for the public API (README, "The API"). Every failure becomes a CliError
// with one line of text: a network failure names the server and the cause ("connection
// refused"), an HTTP error carries the server's own error.code and message.

import { CliError, oneLine } from "./errors.ts";
import type { DrainView, Results, Snapshot } from "./types.ts";

export interface CreatedRun extends Snapshot {
  readToken: string;
  agentToken: string;
  urls: { self: string; results: string; events: string; dashboard: string };
}

export interface RequestOptions {
  token?: string | undefined;
  body?: unknown;
  /** Milliseconds before the call is given up; long-polls add their wait to it. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

// undici (Node's fetch) reports network failures as TypeError("fetch failed") with the
// system error in `cause`.
const CAUSES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  UND_ERR_SOCKET: "connection closed",
  CERT_HAS_EXPIRED: "TLS certificate expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed TLS certificate",
};

function networkCause(e: unknown): string {
  let c: unknown = e;
  for (let i = 0; i < 4 && c instanceof Error; i++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === "string" && CAUSES[code]) return CAUSES[code];
    if (c.cause === undefined) break;
    c = c.cause;
  }
  const msg = c instanceof Error ? c.message : String(c);
  // The Fetch standard blocks some ports outright (1, 7, 25, 6000…): nothing is even tried.
  if (msg === "bad port") return "fetch refuses this port (on the Fetch standard's list of bad ports)";
  return oneLine(msg || "network error", 200);
}

export function normalizeServer(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliError(`--server must be a URL such as http://127.0.0.1:8787 (got "${oneLine(server, 100)}")`, { exitCode: 2 });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new CliError("--server must be an http:// or https:// URL", { exitCode: 2 });
  return url.href.replace(/\/+$/, "");
}

export class ApiClient {
  readonly server: string;
  constructor(server: string) {
    this.server = normalizeServer(server);
  }

  async raw(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let res: Response;
    try {
      res = await fetch(this.server + path, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      if (e instanceof DOMException && e.name === "TimeoutError") {
        throw new CliError(`${this.server} did not answer ${method} ${path.split("?")[0]} within ${Math.round(timeoutMs / 1000)} s`, {
          transient: true,
        });
      }
      throw new CliError(`cannot reach ${this.server}: ${networkCause(e)}`, { transient: true });
    }
    if (res.ok) return res;
    throw await httpError(res);
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.raw(method, path, opts);
    try {
      return (await res.json()) as T;
    } catch {
      throw new CliError(`${this.server} answered ${method} ${path.split("?")[0]} with a body that is not JSON`, { transient: true });
    }
  }

  async text(method: string, path: string, opts: RequestOptions = {}): Promise<string> {
    return (await this.raw(method, path, opts)).text();
  }

  // ── The routes the CLI uses ────────────────────────────────────────────────

  createRun(token: string, spec: unknown): Promise<CreatedRun> {
    return this.json("POST", "/v1/runs", { token, body: spec });
  }

  status(id: string, token: string, waitSeconds = 0): Promise<Snapshot> {
    const q = waitSeconds > 0 ? `?wait=${waitSeconds}` : "";
    return this.json("GET", `${runPath(id)}${q}`, { token, timeoutMs: DEFAULT_TIMEOUT_MS + waitSeconds * 1000 });
  }

  results(id: string, token: string, waitSeconds = 0): Promise<Results> {
    const q = waitSeconds > 0 ? `?wait=${waitSeconds}` : "";
    return this.json("GET", `${runPath(id)}/results${q}`, { token, timeoutMs: DEFAULT_TIMEOUT_MS + waitSeconds * 1000 });
  }

  export(id: string, token: string, format: "aiperf" | "csv" | "regions-csv" | "timeslices-csv" | "timeslices"): Promise<string> {
    return this.text("GET", `${runPath(id)}/results?format=${format}`, { token });
  }

  stop(id: string, token: string, mode: "graceful" | "force"): Promise<Snapshot> {
    return this.json("POST", `${runPath(id)}/stop`, { token, body: { mode } });
  }

  /** `body` only with POST: `{timeoutSeconds}` sets the drain's deadline. */
  drain(method: "GET" | "POST" | "DELETE", token: string, body?: { timeoutSeconds: number }): Promise<DrainView> {
    return this.json(method, "/v1/admin/drain", { token, ...(body !== undefined ? { body } : {}) });
  }

  /** The dashboard link; only a run's read token (epr_…) goes into it, never the API token. */
  dashboardUrl(id: string, token: string): string {
    const page = `${this.server}/runs/${encodeURIComponent(id)}`;
    return token.startsWith("epr_") ? `${page}#token=${encodeURIComponent(token)}` : `${page}#token=<read token>`;
  }
}

export function runPath(id: string): string {
  return `/v1/runs/${encodeURIComponent(id)}`;
}

async function httpError(res: Response): Promise<CliError> {
  const text = await res.text().catch(() => "");
  let code: string | null = null;
  let message: string | null = null;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    /* not our error shape */
  }
  const transient = res.status >= 500 || res.status === 429;
  const detail = code !== null ? `${code}: ${message ?? ""}` : text.trim() !== "" ? text : res.statusText;
  return new CliError(oneLine(`HTTP ${res.status} ${detail}`), { transient, status: res.status });
}
