// The layering rules of docs/ARCHITECTURE.md ("Layers"), checked: which folder may
// import which, which runtime each folder may depend on, and no import cycle, direct or
// around a circle, type-only imports included. Run by `npm run lint`.
//
// A few lines of our own instead of a dependency-graph tool: those parse TypeScript with
// the TypeScript compiler's JS API, which the TypeScript 7 this project uses no longer
// ships. Import statements are read with one expression; a test plants a cycle and a
// forbidden import to show each rule can fail (test/node/imports.test.ts).

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

/** For each layer: the layers it may import from (itself included). */
export const LAYERS: Record<string, readonly string[]> = {
  contract: ["contract"],
  agent: ["contract", "agent"],
  mock: ["contract", "mock"],
  durable: ["contract", "agent", "mock", "durable"],
  worker: ["contract", "agent", "mock", "durable", "worker"],
  cli: ["contract", "agent", "cli"],
};

/** Module prefixes a layer must not import: the contract and the engine run in workerd and in Node alike. */
export const FORBIDDEN_RUNTIMES: Record<string, readonly string[]> = {
  contract: ["cloudflare:", "node:"],
  agent: ["cloudflare:", "node:"],
  mock: ["cloudflare:", "node:"],
  durable: ["node:"],
  worker: ["node:"],
  cli: ["cloudflare:"],
};

/** Modules the Worker generates and serves (worker/dashboard/assets.ts), with no file of their own. */
const GENERATED = new Set(["worker/dashboard/metrics.ui.js"]);

const SOURCE = /\.(ts|js|mjs)$/;
// `import … from "x"`, `export … from "x"`, `import "x"`, `import("x")`, across lines.
const SPECIFIER = /(?:\b(?:import|export)\b[^;"'`]*?\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g;

function sourceFiles(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(sourceFiles(p));
    else if (SOURCE.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function resolveLocal(root: string, from: string, spec: string): string | null {
  const base = normalize(join(dirname(from), spec.replace(/\?.*$/, "")));
  for (const candidate of [base, `${base}.ts`, `${base}.js`, join(base, "index.ts")]) {
    try {
      if (statSync(join(root, candidate)).isFile()) return candidate;
    } catch {
      /* not this one */
    }
  }
  return null;
}

const layerOf = (file: string) => file.split(/[\\/]/)[0] ?? "";

/** Every rule broken under `root`, one line each; empty when the tree keeps them all. */
export function checkImports(root: string): string[] {
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const layer of Object.keys(LAYERS)) {
    let files: string[];
    try {
      files = sourceFiles(join(root, layer));
    } catch {
      continue; // a layer with no folder yet
    }
    for (const abs of files) {
      const file = relative(root, abs);
      const edges: string[] = [];
      for (const [, spec] of readFileSync(abs, "utf8").matchAll(SPECIFIER)) {
        if (spec === undefined) continue;
        if (!spec.startsWith(".")) {
          const runtime = FORBIDDEN_RUNTIMES[layer]?.find((prefix) => spec.startsWith(prefix));
          if (runtime) problems.push(`${file}: imports ${spec}, but ${layer}/ must not depend on ${runtime}*`);
          continue;
        }
        const generated = normalize(join(dirname(file), spec));
        if (GENERATED.has(generated)) continue;
        const target = resolveLocal(root, file, spec);
        if (target === null) {
          problems.push(`${file}: cannot resolve ${spec}`);
          continue;
        }
        const to = layerOf(target);
        if (!(LAYERS[layer] ?? []).includes(to))
          problems.push(`${file}: imports ${target}, but ${layer}/ may import only ${(LAYERS[layer] ?? []).join(", ")}`);
        edges.push(target);
      }
      graph.set(file, edges);
    }
  }
  for (const cycle of cycles(graph)) problems.push(`import cycle: ${[...cycle, cycle[0]].join(" → ")}`);
  return problems;
}

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.reverse());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = join(dirname(new URL(import.meta.url).pathname), "..");
  const problems = checkImports(root);
  for (const p of problems) console.error(p);
  if (problems.length > 0) {
    console.error(`check-imports: ${problems.length} problem(s); the rules are in docs/ARCHITECTURE.md ("Layers").`);
    process.exit(1);
  }
  console.log("check-imports: layers and cycles OK");
}
