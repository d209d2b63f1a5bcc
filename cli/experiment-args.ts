// `run`'s flags that make an experiment (README, "Experiments") instead of a run, and the
// body of POST /v1/experiments they describe:
//
//   --concurrency 1,2,4,8        a sweep over concurrency (AIPerf's list syntax: a comma makes a list)
//   --request-rate 5,10,20       a sweep over the request rate
//   --search-slo EXPR…           a capacity search: the highest level at which every SLO holds,
//     [--search-over concurrency|rate] [--search-min N] [--search-max N]
//
// The rest of the flags build the base RunSpec with buildSpec, exactly as for a single
// run, with the swept flag set to one of the levels: every level's run then replaces that
// one value (contract/experiment.ts, levelSpecInput), so a level is the run that
// `run --concurrency <level>` with the same flags would have made. As for a run, values
// are only parsed here; the server checks ranges and caps, and its message, with the
// experiment's fields named as the flags that set them, is what the user sees.

import type { Over } from "../contract/experiment.ts";
import { buildSpec, num, str } from "./args.ts";
import type { Values } from "./args.ts";
import { UsageError, oneLine } from "./errors.ts";
import { withFlagNames } from "./field-flags.ts";

export const EXPERIMENT_FLAGS = {
  "search-slo": { type: "string", multiple: true },
  "search-over": { type: "string" },
  "search-min": { type: "string" },
  "search-max": { type: "string" },
} as const;

/** The search's defaults when --search-min or --search-max is left out (README, "Experiments"). */
export const SEARCH_MIN_DEFAULT = 1;
export const SEARCH_MAX_DEFAULT = 256;

const FLAG_OF: Record<Over, "concurrency" | "request-rate"> = { concurrency: "concurrency", rate: "request-rate" };

export interface ExperimentRequest {
  kind: "sweep" | "search";
  over: Over;
  /** The body of POST /v1/experiments. */
  body: Record<string, unknown>;
  /** A sweep's levels as typed, to name an item in the server's messages. */
  items: string[];
}

/**
 * A list flag's items as numbers, or null when the value holds no comma (one value: a
 * run). A bad item is a usage error naming the flag, its position and the item.
 */
export function parseList(flag: string, raw: string): { values: number[]; items: string[] } | null {
  if (!raw.includes(",")) return null;
  const items = raw.split(",").map((s) => s.trim());
  const values = items.map((item, i) => {
    const n = item === "" ? Number.NaN : Number(item);
    if (!Number.isFinite(n)) {
      throw new UsageError(
        `--${flag} item ${i + 1} of "${oneLine(raw, 80)}" is ${item === "" ? "empty" : `"${oneLine(item, 40)}"`}: a list is numbers separated by commas, e.g. 1,2,4,8`,
      );
    }
    return n;
  });
  return { values, items };
}

// An SLO's shape only (an operator after the metric, which may carry a {region:…} tag);
// the server checks the metric, the statistic and the number.
const SLO_OPERATOR = /(<=|>=|==|<|>)\s*\S/;

function sloOf(raw: string): string {
  if (!SLO_OPERATOR.test(raw.slice(raw.lastIndexOf("}") + 1))) {
    throw new UsageError(`--search-slo expects METRIC.STAT<N, e.g. "time_to_first_token.p95<200" (got "${oneLine(raw, 60)}")`);
  }
  return raw.replace(/\s+/g, "");
}

const SEARCH_FLAGS = ["search-over", "search-min", "search-max"] as const;

/**
 * The experiment the flags ask for, or null for a single run. `file` is the --spec file's
 * RunSpec (the base's base, as for a run).
 */
export function experimentOf(values: Values, file: Record<string, unknown>): ExperimentRequest | null {
  const concurrency = str(values, "concurrency");
  const rate = str(values, "request-rate");
  const concurrencyList = concurrency === undefined ? null : parseList("concurrency", concurrency);
  const rateList = rate === undefined ? null : parseList("request-rate", rate);
  const slo = (values["search-slo"] as string[] | undefined) ?? [];
  const searchFlags = SEARCH_FLAGS.filter((f) => values[f] !== undefined);

  if (slo.length === 0 && searchFlags.length > 0) {
    throw new UsageError(
      `${searchFlags.map((f) => `--${f}`).join(" and ")} ${searchFlags.length === 1 ? "needs" : "need"} --search-slo, the SLO a capacity search holds every level to (e.g. --search-slo "time_to_first_token.p95<200")`,
    );
  }
  if (concurrencyList && rateList) {
    throw new UsageError("--concurrency and --request-rate cannot both be lists: an experiment sweeps one of them");
  }
  const list = concurrencyList ? ("concurrency" as const) : rateList ? ("rate" as const) : null;
  if (list && slo.length > 0) {
    throw new UsageError(`--search-slo makes a capacity search and a list in --${FLAG_OF[list]} a sweep: use one or the other`);
  }
  if (concurrencyList && rate !== undefined) {
    throw new UsageError(
      "--concurrency takes a list only without --request-rate (with it, --concurrency caps the requests in flight): sweep --request-rate instead",
    );
  }
  // The graceSeconds of the experiment's own summary follows the levels' (--grace, or the --spec file's).
  const grace = (b: Record<string, unknown>) => (typeof b.graceSeconds === "number" ? { graceSeconds: b.graceSeconds } : {});

  if (list) {
    const parsed = (concurrencyList ?? rateList)!;
    const flag = FLAG_OF[list];
    // The base as a run at the first level would have it; each level's run sets its own value.
    const base = buildSpec({ ...values, [flag]: parsed.items[0] }, file);
    return { kind: "sweep", over: list, body: { base, levels: { [list]: parsed.values }, ...grace(base) }, items: parsed.items };
  }
  if (slo.length === 0) return null;

  const overRaw = str(values, "search-over") ?? "concurrency";
  if (overRaw !== "concurrency" && overRaw !== "rate") {
    throw new UsageError(`--search-over must be concurrency or rate (got "${oneLine(overRaw, 40)}")`);
  }
  const over: Over = overRaw;
  if (over === "concurrency" && (concurrency !== undefined || rate !== undefined)) {
    throw new UsageError("--search-over concurrency sets the concurrency of every level: leave out --concurrency and --request-rate");
  }
  if (over === "rate" && rate !== undefined) {
    throw new UsageError(
      "--search-over rate sets the request rate of every level: leave out --request-rate (--concurrency N still caps the requests in flight)",
    );
  }
  const min = num(values, "search-min") ?? SEARCH_MIN_DEFAULT;
  const max = num(values, "search-max") ?? SEARCH_MAX_DEFAULT;
  const base = buildSpec({ ...values, [FLAG_OF[over]]: String(min) }, file);
  return { kind: "search", over, body: { base, search: { over, slo: slo.map(sloOf), min, max }, ...grace(base) }, items: [] };
}

/**
 * The server's message with the experiment's fields named as the flags that set them:
 * `levels.concurrency[2] must…` → `--concurrency item 3 ("0") must…`, `search.slo[0]: …`
 * → `--search-slo "…": …`, and a base field as `run` names it (`-m/--model (target.model)`).
 */
export function experimentFlagNames(
  message: string,
  req: ExperimentRequest,
  values: Values,
  file: Record<string, unknown>,
  fileName: string | undefined,
): string {
  const level = /^levels\.(concurrency|rate)(?:\[(\d+)\])?/.exec(message);
  if (level) {
    const flag = `--${FLAG_OF[level[1] as Over]}`;
    const i = level[2] === undefined ? null : Number(level[2]);
    const rest = message.slice(level[0].length);
    return i === null ? `${flag}${rest}` : `${flag} item ${i + 1} ("${oneLine(req.items[i] ?? "?", 40)}")${rest}`;
  }
  const slo = /^search\.slo\[(\d+)\]/.exec(message);
  if (slo) {
    const expr = ((values["search-slo"] as string[] | undefined) ?? [])[Number(slo[1])] ?? "?";
    return `--search-slo "${oneLine(expr, 80)}"${message.slice(slo[0].length)}`;
  }
  const search = /^search\.(min|max|over)\b/.exec(message);
  if (search) return `--search-${search[1]} (${search[0]})${message.slice(search[0].length)}`;
  if (message.startsWith("graceSeconds")) return `--grace (graceSeconds)${message.slice("graceSeconds".length)}`;
  if (message.startsWith("base.")) {
    const inner = message.slice("base.".length);
    const named = withFlagNames(inner, values, file, fileName);
    return named === inner ? message : named;
  }
  return message;
}
