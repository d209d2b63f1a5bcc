// Benchmarks that must run inside workerd (the RunCoordinator's settle rate, its storage
// size): vitest with @cloudflare/vitest-plugin, like the root vitest.config.ts, but only
// bench/workerd/*.bench.test.ts. Started by bench/run.ts; see docs/BENCHMARKS.md.
//
// Figures leave workerd as one console line per section, `BENCH_RESULT <json>`, which
// bench/run.ts picks out of vitest's output. BENCH_QUICK=1 selects the short variant.
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          API_TOKEN: "bench-api-token",
          // 16 agents holding two shares of up to 5,000 credits each (the scale section).
          MAX_CONCURRENCY: "1000000",
          MAX_REQUESTS: "100000000",
          BENCH_QUICK: process.env.BENCH_QUICK === "1" ? "1" : "0",
          BENCH_ONLY: process.env.BENCH_ONLY ?? "",
          // The bench target (bench/target.ts) for the outbound-fetch probe, when running.
          BENCH_TARGET: process.env.BENCH_TARGET ?? "",
        },
      },
    }),
  ],
  test: {
    name: "bench-workerd",
    include: ["bench/workerd/**/*.bench.test.ts"],
    testTimeout: 900_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
