// The report.html builder (contract/report-html.ts) on its own: the data stays inert
// whatever the server's strings hold, the policy allows exactly the file's own inline
// code, and the module linker refuses what it cannot link. No server, no browser
// (report.test.ts opens real files in Chromium).
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { buildReport, linkModules } from "../../contract/report-html.ts";
import { reportAssets } from "../../cli/report.ts";

const HOSTILE = `</script><script>alert(1)</script><!--<script>`;

describe("report.html's builder", () => {
  it("keeps the results a data block: a </script> or <!-- in any string cannot end it, and the data reads back unchanged", async () => {
    const results = {
      id: "a".repeat(64),
      status: "complete",
      errors: [{ code: HOSTILE, type: "x\u2028y", count: 1 }],
      agents: [{ name: HOSTILE }],
    };
    const { html } = await buildReport(results, reportAssets());
    expect(html).not.toContain("alert(1)</script>");
    expect(html.match(/<\/script>/g)).toHaveLength(3); // the data block, uPlot, the dashboard
    const data = /<script type="application\/json" id="edgeperf-results">(.*?)<\/script>/s.exec(html)?.[1] ?? "";
    expect(JSON.parse(data)).toEqual(results);
  });

  it("allows by hash exactly its inline scripts and style, and nothing from anywhere", async () => {
    const { html, csp } = await buildReport({ id: "b".repeat(64) }, reportAssets());
    const hash = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;
    const scripts = [...html.matchAll(/<script(?: type="module")?>(.*?)<\/script>/gs)].map((m) => hash(m[1] ?? ""));
    const styles = [...html.matchAll(/<style>(.*?)<\/style>/gs)].map((m) => hash(m[1] ?? ""));
    expect(scripts).toHaveLength(2);
    expect(styles).toHaveLength(1);
    expect(csp).toBe(
      `default-src 'none'; script-src ${scripts.join(" ")}; style-src ${styles.join(" ")}; img-src data:; base-uri 'none'; form-action 'none'`,
    );
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="${csp.replaceAll("'", "&#39;")}">`);
  });

  it("links modules into one script in dependency order, and refuses a form of import or export it cannot link", () => {
    const linked = linkModules(
      {
        "a.ui.js": `import { b as bee } from "./b.ui.js";\nexport function a() {\n  return bee + 1;\n}\n`,
        "b.ui.js": "export const b = 41;\n",
      },
      "a.ui.js",
    );
    expect(linked.indexOf('__modules["b.ui.js"]')).toBeLessThan(linked.indexOf('__modules["a.ui.js"]'));
    expect(new Function(`${linked}\nreturn __modules["a.ui.js"].a();`)()).toBe(42);
    expect(() => linkModules({ "a.ui.js": "export default 1;\n" }, "a.ui.js")).toThrow(/cannot link: export default 1/);
    expect(() => linkModules({ "a.ui.js": 'import * as x from "./b.ui.js";\n', "b.ui.js": "" }, "a.ui.js")).toThrow(/cannot link/);
    expect(() => linkModules({ "a.ui.js": 'import { x } from "./gone.ui.js";\n' }, "a.ui.js")).toThrow(/no module gone\.ui\.js/);
  });
});
