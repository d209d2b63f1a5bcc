// The `edgeperf` command: dispatch to a command module, and the one place where a
// failure becomes ONE line on stderr and an exit code (2 usage, 1 anything else).
// bin/edgeperf.mjs imports the bundle of this file and calls main().

import { drain, status, stop } from "./admin.ts";
import { agent } from "./agent.ts";
import { print } from "./common.ts";
import { compare } from "./compare.ts";
import { dataset } from "./dataset.ts";
import { demo } from "./demo.ts";
import { dev } from "./dev.ts";
import { suggest } from "./args.ts";
import { CliError, UsageError, oneLine } from "./errors.ts";
import { MAIN, helpFor } from "./help.ts";
import { results, run, watch } from "./run.ts";

type Command = (argv: string[], help: (cmd: string) => number) => Promise<number>;

const COMMANDS: Record<string, Command> = { run, status, watch, results, compare, stop, agent, drain, dataset, demo, dev };

const help = (cmd: string): number => {
  print(helpFor(cmd));
  return 0;
};

export function formatError(e: unknown): { line: string; code: number } {
  if (e instanceof CliError) return { line: `edgeperf: ${oneLine(e.message)}`, code: e.exitCode };
  // A bug of ours: still one line, no stack (EDGEPERF_DEBUG=1 shows it).
  if (process.env.EDGEPERF_DEBUG) console.error(e);
  return { line: `edgeperf: internal error: ${oneLine(e instanceof Error ? e.message : String(e))}`, code: 1 };
}

async function dispatch(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    if (first === "help" && rest[0]) return help(rest[0]);
    print(MAIN);
    return first === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (!command) {
    const meant = suggest(first, Object.keys(COMMANDS));
    const hint = meant !== null ? `did you mean \`edgeperf ${meant}\`?` : "run `edgeperf --help` for the list";
    throw new UsageError(`unknown command "${oneLine(first, 40)}"; ${hint}`);
  }
  return command(rest, help);
}

/** Runs the CLI; resolves to the exit code and never throws. */
export async function main(argv: string[]): Promise<number> {
  const fatal = (e: unknown) => {
    const { line, code } = formatError(e);
    process.stderr.write(`${line}\n`);
    process.exit(code);
  };
  // Nothing should reach these; if something does, it still ends as one line.
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
  try {
    return await dispatch(argv);
  } catch (e) {
    const { line, code } = formatError(e);
    process.stderr.write(`${line}\n`);
    return code;
  }
}
