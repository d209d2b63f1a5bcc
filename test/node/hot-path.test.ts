// What runs once per request in an edge agent makes no named closure. wrangler bundles
// with esbuild's keepNames, which wraps every named function expression in a __name()
// call (an Object.defineProperty) each time it is created; one closure made per request
// was about 2% of six edge agents' busy JS time in a profile, two of them about 4%
// (docs/BENCHMARKS.md). This reads the bundle `wrangler deploy --dry-run` writes, as it
// would be deployed, and checks the per-request functions for __name.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../cli/wrangler.ts";

/** Module functions run per request (agent/target.ts). */
const FUNCTIONS = ["sendRequest", "drain", "readStream", "readWhole", "stopStream", "spreadOverTick", "moved", "failed", "discard"];
/** AgentEngine methods run per request (agent/engine.ts). */
const METHODS = ["launch", "launchDue", "jobOf"];

let out = "";
let bundle = "";

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), "edgeperf-bundle-"));
  execFileSync(process.execPath, [join(PROJECT_ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", out], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: "pipe",
  });
  const file = readdirSync(out).find((f) => f === "index.js");
  if (!file) throw new Error(`wrangler wrote no bundle in ${out}`);
  bundle = readFileSync(join(out, file), "utf8");
}, 120_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

/** The source of a top-level function (`function NAME(` … the first `}` at the line's start). */
function moduleFunction(name: string): string {
  const m = new RegExp(`^(?:async )?function ${name}\\(`, "m").exec(bundle);
  if (!m) throw new Error(`no function ${name} in the bundle`);
  const end = bundle.indexOf("\n}\n", m.index);
  return bundle.slice(m.index, end + 2);
}

/** The source of a class method at two spaces' indent (`  NAME(` … `\n  }\n`), in the class that has it. */
function method(cls: string, name: string): string {
  const at = bundle.search(new RegExp(`^var ${cls} = class|^class ${cls}\\b`, "m"));
  if (at < 0) throw new Error(`no class ${cls} in the bundle`);
  const m = new RegExp(`^  (?:async )?${name}\\(`, "m").exec(bundle.slice(at));
  if (!m) throw new Error(`no method ${cls}.${name} in the bundle`);
  const start = at + m.index;
  const end = bundle.indexOf("\n  }\n", start);
  return bundle.slice(start, end + 4);
}

describe("the per-request path in the deployed bundle", () => {
  it("is the bundle wrangler deploys, with keepNames' __name helper in it (so the check below can find its calls)", () => {
    expect(bundle).toMatch(/__name\(/);
    expect(moduleFunction("sendRequest")).toMatch(/deadlines\.add/);
  });

  it.each(FUNCTIONS)("%s makes no named closure", (name) => {
    expect(moduleFunction(name)).not.toMatch(/__name\(/);
  });

  it.each(METHODS)("AgentEngine.%s makes no named closure", (name) => {
    expect(method("AgentEngine", name)).not.toMatch(/__name\(/);
  });
});
