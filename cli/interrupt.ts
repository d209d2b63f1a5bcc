// Ctrl-C while `run` follows its run. On a terminal the first one asks "stop the run
// gracefully? [Y/n]" (the run then drains and the CLI keeps following it to its final
// results); without a terminal it stops gracefully at once. The next Ctrl-C force-stops
// (outstanding credits are abandoned), and one more leaves without waiting (exit 130).

import { createInterface } from "node:readline";
import type { Interface } from "node:readline";
import { oneLine } from "./errors.ts";
import type { StatusLine } from "./follow.ts";

export type StopMode = "graceful" | "force";

export interface InterruptOptions {
  line: StatusLine;
  stop: (mode: StopMode) => Promise<void>;
}

/** Installs the SIGINT handler; returns its uninstaller. */
export function handleInterrupts({ line, stop }: InterruptOptions): () => void {
  let stage: "none" | "graceful" | "force" = "none";
  let prompt: Interface | null = null;
  const interactive = process.stdin.isTTY === true && line.isTTY;

  const request = (mode: StopMode) => {
    stage = mode;
    line.log(
      mode === "graceful"
        ? "Stopping gracefully: in-flight requests finish (Ctrl-C again to force-stop)."
        : "Force-stopping: outstanding requests are abandoned.",
    );
    stop(mode).catch((e: unknown) => line.log(`edgeperf: could not stop the run: ${oneLine(e instanceof Error ? e.message : String(e))}`));
  };

  const closePrompt = () => {
    const p = prompt;
    prompt = null;
    p?.close();
  };

  const ask = () => {
    line.pause();
    const rl = createInterface({ input: process.stdin, output: line.out });
    prompt = rl;
    // In raw mode Ctrl-C reaches readline, not the process: a second Ctrl-C while asking.
    rl.on("SIGINT", () => {
      closePrompt();
      line.resume();
      request("force");
    });
    rl.question("stop the run gracefully? [Y/n] ", (answer) => {
      closePrompt();
      line.resume();
      if (/^\s*(y|yes)?\s*$/i.test(answer)) request("graceful");
      else line.log("Continuing.");
    });
  };

  const onSigint = () => {
    if (prompt) {
      closePrompt();
      line.resume();
      request("force");
    } else if (stage === "none") {
      if (interactive) ask();
      else request("graceful");
    } else if (stage === "graceful") request("force");
    else {
      line.finish("edgeperf: interrupted; the run goes on without this terminal.");
      process.exit(130);
    }
  };

  process.on("SIGINT", onSigint);
  return () => {
    process.off("SIGINT", onSigint);
    closePrompt();
  };
}
