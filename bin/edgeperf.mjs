#!/usr/bin/env node
// The `edgeperf` command's launcher: checks the Node version, then runs the bundled CLI
// (dist/edgeperf.mjs, built from cli/ by `npm run build:cli`, which `npm ci` runs).
// Plain JavaScript that any Node parses, so an old Node gets this one line, not a crash.
import { existsSync } from "node:fs";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  process.stderr.write(
    `edgeperf: Node.js 22 or newer is required, this is ${process.version}; run it through npm (npm start, npx edgeperf), which uses the project's Node 22\n`,
  );
  process.exit(1);
}

const bundle = new URL("../dist/edgeperf.mjs", import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write("edgeperf: the CLI is not built: run `npm run build:cli` first\n");
  process.exit(1);
}

const { main } = await import(bundle.href);
const code = await main(process.argv.slice(2));
// Exit now (idle keep-alive sockets would hold the process open for seconds), once
// everything written to stdout and stderr is flushed.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise((resolve) => s.write("", resolve))));
process.exit(code);
