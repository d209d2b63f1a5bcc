// The sections measured inside workerd (bench/workerd/*.bench.test.ts): one vitest run
// with bench/vitest.bench.config.ts; each test prints `BENCH_RESULT {json}`.
import { join } from "node:path";
import { ROOT, log, run } from "../lib/util.ts";

export async function workerdSections(sections: string[], quick: boolean, targetUrl: string | null): Promise<Record<string, any>> {
  log(`workerd: vitest for ${sections.join(", ")}`);
  const r = await run(
    process.execPath,
    [join(ROOT, "node_modules", "vitest", "vitest.mjs"), "run", "--config", "bench/vitest.bench.config.ts"],
    {
      env: {
        BENCH_QUICK: quick ? "1" : "0",
        BENCH_ONLY: sections.join(","),
        BENCH_TARGET: targetUrl ?? "",
        NO_COLOR: "1",
        FORCE_COLOR: "0",
      },
      timeoutMs: 40 * 60_000,
    },
  );
  const out: Record<string, any> = {};
  for (const line of r.stdout.split("\n")) {
    const i = line.indexOf("BENCH_RESULT ");
    if (i < 0) continue;
    const j = JSON.parse(line.slice(i + "BENCH_RESULT ".length)) as { section: string };
    out[j.section] = j;
  }
  const missing = sections.filter((s) => !(s in out));
  if (r.code !== 0 || missing.length > 0) {
    throw new Error(
      `workerd benchmarks failed (exit ${r.code}, missing ${missing.join(", ") || "none"}):\n${(r.stdout + r.stderr).slice(-4000)}`,
    );
  }
  return out;
}
