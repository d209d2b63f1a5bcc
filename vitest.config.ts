import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Vitest's file-system module cache hands a cached module to workerd in one WebSocket
    // message, and workerd refuses messages over 1 MiB: gpt-tokenizer's encodings are 6
    // and 12 MB, so a test file that loads them from the cache crashed its worker
    // ("Message is too large"), depending on the order files ran in.
    experimental: { fsModuleCache: false },
    projects: [
      {
        // Unit and integration tests inside workerd: the Worker and its Durable Objects.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // The API token exists only in tests; deployments set it with `wrangler secret put`.
              // Suites create dozens of runs a minute with one token; the limiter has tests of its own.
              bindings: {
                API_TOKEN: "test-api-token",
                ALLOWED_TARGETS: "127.0.0.1:*,*.example.com,api.example.org",
                MAX_RUNS_PER_MINUTE: "0",
              },
            },
          }),
        ],
        test: { name: "workers", include: ["test/**/*.test.ts"], exclude: ["test/node/**"] },
      },
      {
        // End-to-end tests in Node against a real `wrangler dev` (and, later, the CLI and a browser).
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          // No retries: the assertions are exact. Two things on this machine make them fail
          // without a defect: editing a source file during the run (wrangler dev rebuilds and
          // restarts workerd, which resets every Durable Object mid-run as a deploy would;
          // edge agents then settle what they held as agent_restarted), and other heavy
          // work on the 2 cores (the rate-mode "no stall" check allows 250 ms).
        },
      },
    ],
  },
});
