// `edgeperf dev` (what `npm run dev` runs): the Worker on http://127.0.0.1:8787 with a
// fixed, well-known API token, kept running for exploration. Wrangler owns the terminal
// (its hotkeys work); arguments after `--` go to wrangler, e.g. `-- --var ALLOWED_TARGETS:localhost:*`.

import { COMMON_FLAGS, parseFlags, str } from "./args.ts";
import { UsageError } from "./errors.ts";
import { Wrangler } from "./wrangler.ts";

export const DEV_TOKEN = "dev-token";

export async function dev(argv: string[], help: (cmd: string) => number): Promise<number> {
  const split = argv.indexOf("--");
  const own = split < 0 ? argv : argv.slice(0, split);
  const extraArgs = split < 0 ? [] : argv.slice(split + 1);
  const flags = { help: COMMON_FLAGS.help, token: COMMON_FLAGS.token, port: { type: "string" } } as const;
  const { values } = parseFlags(own, flags, { min: 0, max: 0, names: "" });
  if (values.help) return help("dev");
  const port = Number(str(values, "port") ?? "8787");
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError("--port must be a TCP port number");
  const token = str(values, "token") ?? DEV_TOKEN;

  const wrangler = new Wrangler({ port, vars: { API_TOKEN: token }, stdio: "inherit", extraArgs });
  // The terminal's Ctrl-C reaches wrangler too (same process group); this process
  // simply waits for it to exit.
  process.on("SIGINT", () => {});
  const exited = new Promise<number>((resolve) => wrangler.proc.once("exit", (code) => resolve(code ?? 0)));
  const ready = wrangler.ready().then(
    () => true,
    () => false,
  );
  if (await Promise.race([ready, exited.then(() => false)])) {
    const server = port === 8787 ? "" : ` --server ${wrangler.url}`;
    process.stderr.write(
      [
        "",
        `edgeperf is running on ${wrangler.url}   API token: ${token}`,
        "Benchmark the built-in mock from another terminal:",
        `  npx edgeperf run${server} --token ${token} --url builtin:mock --streaming --concurrency 8 --request-count 200 --edge-agents 2`,
        "",
      ].join("\n") + "\n",
    );
  }
  return exited;
}
