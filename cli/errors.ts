// The CLI's two kinds of failure. Both end as ONE line on stderr (main.ts formats them):
// a usage error exits 2, anything else 1. Nothing else may print a stack trace.

import { visible } from "./escape.ts";

export class CliError extends Error {
  readonly exitCode: number;
  /** Worth retrying while following a run: the server was unreachable or answered 5xx. */
  readonly transient: boolean;
  /** The HTTP status, when the server answered. */
  readonly status: number | null;
  constructor(message: string, opts: { exitCode?: number; transient?: boolean; status?: number | null } = {}) {
    super(message);
    this.name = "CliError";
    this.exitCode = opts.exitCode ?? 1;
    this.transient = opts.transient ?? false;
    this.status = opts.status ?? null;
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = "UsageError";
  }
}

/** One line, whatever the message holds; it often quotes the server or the user, so control characters show as escapes. */
export function oneLine(text: string, max = 500): string {
  const flat = visible(text.replace(/\s+/g, " ").trim());
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
