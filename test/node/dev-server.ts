// The end-to-end suites' `wrangler dev` (cli/dev-server.ts) with their API token.

import { DevServer, api } from "../../cli/dev-server.ts";

export { DevServer, api };

export const DEV_API_TOKEN = "e2e-api-token";

/** A local server for one suite; suites create many runs a minute, and the creation limit has its own tests. */
export function e2eServer(vars: Record<string, string> = {}, extraArgs: string[] = []): DevServer {
  return new DevServer({ apiToken: DEV_API_TOKEN, vars: { MAX_RUNS_PER_MINUTE: "0", ...vars }, extraArgs, readyTimeoutMs: 60_000 });
}
