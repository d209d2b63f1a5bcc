// Talking to edgeperf in a real `wrangler dev` over its public HTTP API, as a user would.
import { DevServer, api } from "../../cli/dev-server.ts";

export { DevServer, api };

export const API_TOKEN = "bench-api-token";

export interface Created {
  id: string;
  readToken: string;
  agentToken: string;
}

/** A local `wrangler dev` whose agents may call the bench target on 127.0.0.1. */
export function benchServer(): DevServer {
  return new DevServer({ apiToken: API_TOKEN, vars: { ALLOWED_TARGETS: "127.0.0.1:*", MAX_CONCURRENCY: "4096" }, captureBundle: true });
}

export async function createRun(server: DevServer, spec: Record<string, unknown>): Promise<Created> {
  const res = await api(server.url, "POST", "/v1/runs", API_TOKEN, spec);
  if (res.status !== 201) throw new Error(`create run: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Created;
}

/** Long-polls the results until the run is complete. */
export async function waitComplete(server: DevServer, run: Created, limitMs = 600_000): Promise<any> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const res = await api(server.url, "GET", `/v1/runs/${run.id}/results?wait=30`, run.readToken);
    if (res.status !== 200) throw new Error(`results: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.phase === "complete") return res.body;
  }
  throw new Error(`run ${run.id} did not complete in ${limitMs} ms`);
}
