// The server validates a run's spec and names what is wrong by its RunSpec field
// ("target.model is required…"); a user who typed flags thinks in flags. This puts the
// flag back: "-m/--model (target.model) is required…", unless the user's --spec file set
// that field and no flag did, which it then says.
//
// Which flag sets which field is learnt from buildSpec itself (each flag on its own, with
// a sample value), so a flag added there is covered here without a second list.

import { DATASET_FLAGS, SPEC_FLAGS, buildSpec } from "./args.ts";
import type { Values } from "./args.ts";

type Flag = { type: "string" | "boolean"; short?: string; multiple?: boolean };

/** Leaf paths of a spec object: "target.model", "load.concurrency"… */
function leaves(o: unknown, prefix = ""): string[] {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return prefix ? [prefix] : [];
  return Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

// Values a flag may need before buildSpec accepts it.
const SAMPLES = ["1", "chat", "builtin:mock", "a: b", "x.p99<1"];

let cached: Map<string, string> | null = null;

/** RunSpec field → the flag that sets it, as the user would type it ("-m/--model"). */
export function fieldFlags(): Map<string, string> {
  if (cached) return cached;
  const map = new Map<string, string>();
  for (const [name, def] of Object.entries({ ...SPEC_FLAGS, ...DATASET_FLAGS } as Record<string, Flag>)) {
    if (name === "spec" || name === "out") continue;
    const label = def.short ? `-${def.short}/--${name}` : `--${name}`;
    const samples = def.type === "boolean" ? [true] : SAMPLES;
    for (const sample of samples) {
      let spec: Record<string, unknown>;
      try {
        spec = buildSpec({ [name]: def.multiple ? [sample] : sample } as Values);
      } catch {
        continue; // not a value this flag takes: try the next
      }
      // A record (headers, thresholds) is one field whatever its keys.
      for (const path of leaves(spec)) {
        const field = /^(target\.headers|thresholds)\b/.exec(path)?.[1] ?? path;
        if (!map.has(field)) map.set(field, label);
      }
      break;
    }
  }
  // --concurrency with --request-rate caps the requests in flight.
  if (map.has("load.concurrency")) map.set("load.maxConcurrency", map.get("load.concurrency") ?? "");
  // The dataset's id comes from the file --input-file uploads (cli/dataset.ts), not from buildSpec.
  map.set("workload.dataset.id", "--input-file");
  cached = map;
  return map;
}

function has(o: unknown, path: string): boolean {
  let cur: unknown = o;
  for (const key of path.split(".")) {
    if (typeof cur !== "object" || cur === null || !Object.hasOwn(cur, key)) return false;
    cur = (cur as Record<string, unknown>)[key];
  }
  return true;
}

/**
 * The server's message with the field it begins with named as the flag. `values` are the
 * command's flags, `file` the --spec file's spec and `fileName` its name (if any).
 */
export function withFlagNames(message: string, values: Values, file: Record<string, unknown>, fileName: string | undefined): string {
  // "target.model is…", "agents.regions[0] must…", "thresholds.x.p99: unknown…", "thresholds: …"
  const m = /^([A-Za-z][\w]*(?:\.[\w$-]+|\[\d+\])*)(?=[\s:])/.exec(message);
  if (!m?.[1]) return message;
  const path = m[1].replace(/\[\d+\]/g, "");
  const rest = message.slice(m[1].length);
  const flags = fieldFlags();
  const field = [...flags.keys()].filter((f) => path === f || path.startsWith(`${f}.`)).sort((a, b) => b.length - a.length)[0];
  if (field === undefined) return message;
  const flag = flags.get(field) ?? "";
  const long = flag.replace(/^-\w\//, "").slice(2);
  if (values[long] === undefined && fileName !== undefined && has(file, field)) return `${m[1]} (in --spec ${fileName})${rest}`;
  return `${flag} (${m[1]})${rest}`;
}
