// Rewrites the README's metric table from the catalog (contract/metric-catalog.ts):
// `npm run docs:metrics`. test/catalog.test.ts fails while the README and the catalog differ.

import { readFileSync, writeFileSync } from "node:fs";
import { metricsMarkdownTable } from "../contract/metric-catalog.ts";

const START = "<!-- metrics:start (npm run docs:metrics) -->";
const END = "<!-- metrics:end -->";
const path = new URL("../README.md", import.meta.url);
const readme = readFileSync(path, "utf8");
const from = readme.indexOf(START);
const to = readme.indexOf(END);
if (from < 0 || to < from) throw new Error(`README.md has no ${START} … ${END} section`);
writeFileSync(path, `${readme.slice(0, from + START.length)}\n${metricsMarkdownTable()}\n${readme.slice(to)}`);
console.log("README.md: metric table written from contract/metric-catalog.ts");
