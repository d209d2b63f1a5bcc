// The end-to-end suites' `wrangler dev` (cli/dev-server.ts) with their API token.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { DevServer, api } from "../../cli/dev-server.ts";

export { DevServer, api };

export const DEV_API_TOKEN = "e2e-api-token";

/** A local server for one suite; suites create many runs a minute, and the creation limit has its own tests. */
export function e2eServer(vars: Record<string, string> = {}, extraArgs: string[] = []): DevServer {
  return new DevServer({ apiToken: DEV_API_TOKEN, vars: { MAX_RUNS_PER_MINUTE: "0", ...vars }, extraArgs, readyTimeoutMs: 60_000 });
}

/** A run as POST /v1/runs answers it. */
export interface E2eRun {
  id: string;
  readToken: string;
  agentToken: string;
}

/** Creates a run on `dev` (graceSeconds 60 unless the spec says), failing the test with the server's answer if refused. */
export async function createE2eRun(dev: DevServer, spec: Record<string, unknown>): Promise<E2eRun> {
  const res = await api(dev.url, "POST", "/v1/runs", DEV_API_TOKEN, { graceSeconds: 60, ...spec });
  if (res.status !== 201) throw new Error(`POST /v1/runs answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as E2eRun;
}

/**
 * A fresh folder under the system's temporary directory, deleted with everything in it
 * when the test file's tests are done (at the top of a test file or inside its tests).
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

const made: string[] = [];
// Registered as each test file imports this module (while vitest collects the file): a
// hook added from inside a running test would be ignored.
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});
