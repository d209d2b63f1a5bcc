import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkImports } from "../../scripts/check-imports.ts";
import { PROJECT_ROOT } from "../../cli/wrangler.ts";

const trees: string[] = [];

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "edgeperf-imports-"));
  trees.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

afterEach(() => {
  for (const root of trees.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe("the layering check (npm run lint)", () => {
  it("passes on this repository", () => {
    expect(checkImports(PROJECT_ROOT)).toEqual([]);
  });

  it("finds a cycle around three files, type-only and multi-line imports included", () => {
    const root = tree({
      "durable/a.ts": 'import type { B } from "./b";\nexport type A = B;\n',
      "durable/b.ts": 'import {\n  c,\n} from "./c";\nexport type B = number;\nexport const b = c;\n',
      "durable/c.ts": 'export { a } from "./a";\nexport const c = 1;\n',
    });
    expect(checkImports(root)).toEqual(["import cycle: durable/a.ts → durable/b.ts → durable/c.ts → durable/a.ts"]);
  });

  it("refuses an import against the layers' direction and a runtime a layer must not use", () => {
    const root = tree({
      "contract/spec.ts": 'import { x } from "../durable/x";\nimport { readFileSync } from "node:fs";\n',
      "durable/x.ts": "export const x = 1;\n",
      "cli/main.ts": 'import { DurableObject } from "cloudflare:workers";\n',
    });
    expect(checkImports(root).sort()).toEqual([
      "cli/main.ts: imports cloudflare:workers, but cli/ must not depend on cloudflare:*",
      "contract/spec.ts: imports durable/x.ts, but contract/ may import only contract",
      "contract/spec.ts: imports node:fs, but contract/ must not depend on node:*",
    ]);
  });
});
