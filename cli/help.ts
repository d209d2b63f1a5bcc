// Usage text for `edgeperf --help` and `edgeperf <command> --help`.

const CONNECTION = `Connection:
  --server URL          edgeperf server (env EDGEPERF_SERVER; default http://127.0.0.1:8787)
  --token TOKEN         token for the call (env EDGEPERF_TOKEN)
  --json                machine-readable JSON on stdout instead of text`;

const EXIT_CODES = `Exit codes:
  0    success
  1    failure: a threshold failed, the run was cancelled (stopped) or partial,
       the server refused the call, or it could not be reached
  2    usage error (unknown flag, missing argument, unreadable --spec)
  130  interrupted (third Ctrl-C of \`run\`)`;

const OUTPUT = `  --out DIR                        write results.json, profile_export_aiperf.json,
                                   profile_export_aiperf.csv and report.html (the
                                   dashboard in one file, no network needed) into DIR
  --junit FILE                     write each threshold as a JUnit test case
  --summary FILE                   append a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)`;

const SPEC = `Target (AIPerf names):
  --url URL                        endpoint URL, or builtin:mock
  -m, --model NAME                 model name
  --endpoint-type TYPE             chat (default), completions, embeddings, responses
                                   (OpenAI Responses API), messages (Anthropic), http, or
                                   template (its body and text paths in --spec's
                                   target.template)
  --tokenizer NAME                 counts tokens where the server reports no usage:
                                   cl100k_base (default) or o200k_base
  --streaming                      stream responses (measures TTFT and ITL)
  --api-key KEY                    sent as Authorization: Bearer KEY (messages: x-api-key)
  -H, --header "Name: value"       extra request header (repeatable)
  --request-timeout-seconds S      per-request timeout
  --mock-ttft-ms MS, --mock-itl-ms MS, --mock-error-rate P   builtin:mock's latency shape
Load:
  --concurrency N                  requests in flight (closed loop); with
                                   --request-rate, the most in flight
  --request-rate R                 requests per second (open loop)
  --arrival-pattern P              constant or poisson (with --request-rate)
  --request-count N                stop after N requests
  --benchmark-duration S           stop after S seconds (with --request-count: first wins)
  --warmup-request-count N         requests sent first and not measured
Workload:
  --isl N, --isl-stddev N          input tokens per request (mean, stddev)
  --osl N, --osl-stddev N          output tokens per request (mean, stddev)
  --random-seed N                  seed for prompts and lengths
Dataset (AIPerf names; README, "Datasets and workloads"):
  --input-file FILE                prompts from a file, uploaded first (skipped when the
                                   server already holds the same content)
  --custom-dataset-type TYPE       single_turn, multi_turn or mooncake_trace (JSONL), or
                                   sharegpt (a JSON array, converted: the first human turn
                                   of each conversation becomes a single_turn prompt)
  --sharegpt-multi-turn            sharegpt: every human turn, as multi_turn sessions
  --dataset-sampling S             sequential (default), random or shuffle (also
                                   --dataset-sampling-strategy)
  --fixed-schedule                 mooncake_trace: replay on the trace's timestamps (always
                                   so; accepted for AIPerf's command lines)
  --replay-speedup X               mooncake_trace: timestamps divided by X (2: twice as fast)
Shared prefixes (synthetic prompts):
  --shared-system-prompt-length N  every prompt starts with the same N tokens
  --prefix-prompt-length N, --num-prefix-prompts K
                                   every prompt starts with one of K prefixes of N tokens
Run:
  --edge-agents N                  load agents at Cloudflare's edge (0: external agents only)
  --regions a,b                    location hints for edge agents (wnam, weur, apac…)
  --grace S                        seconds final results stay served
  --drain-timeout S                seconds in-flight requests get once stopping
  --slice-duration S               seconds per timeslice (AIPerf's name; the time series
                                   and the timeslices exports) [1]
  --threshold EXPR                 e.g. "time_to_first_token.p99<500" (repeatable)
  --abort-on-threshold-fail        stop the run when a threshold fails
  --spec FILE                      a RunSpec JSON file; flags override its fields
Output:
${OUTPUT}`;

// `run` with a list or --search-slo makes an experiment (cli/experiment.ts).
const EXPERIMENT = `Experiments (a run per level, one after another; README, "Experiments"):
  --concurrency 1,2,4,8            a list (AIPerf's syntax) sweeps the concurrency
  --request-rate 5,10,20           or the request rate (--concurrency N then caps in flight)
  --search-slo EXPR                capacity search: the highest level at which every SLO
                                   holds, e.g. "time_to_first_token.p95<200" (repeatable)
  --search-over concurrency|rate   what the search varies [concurrency]
  --search-min N, --search-max N   its bounds [1, 256]: doubles from min, then bisects
  The other flags build every level's run, as for a single run. Prints a line per level
  as it ends, then a table of every level (and the search's answer). --out DIR writes
  each level's run into DIR/level-<level>/, and experiment.json and experiment.csv.
  Exit 0 when the experiment completed (a search that found no level meeting the SLO
  included: it says so); 1 when it was stopped or failed, or when a sweep's level
  failed a --threshold, was cancelled or partial, or had no successful request.`;

const COMMANDS: Record<string, string> = {
  run: `Usage: edgeperf run --url URL [flags]

Creates a run (API token), follows it live on stderr, then prints the results table
(or --json) and the dashboard URL. Ctrl-C asks to stop the run gracefully (without a
terminal it stops gracefully at once); a second Ctrl-C force-stops.

${SPEC}

${EXPERIMENT}

${CONNECTION}

${EXIT_CODES}`,
  status: `Usage: edgeperf status RUN_ID [--token READ_TOKEN] [--json]

Prints the run's status snapshot: phase, counts, agents.

${CONNECTION}`,
  watch: `Usage: edgeperf watch RUN_ID [--token READ_TOKEN] [--out DIR] [--json]

Follows a run live until it completes, then prints its results.
${OUTPUT}

${CONNECTION}

${EXIT_CODES}`,
  results: `Usage: edgeperf results RUN_ID [--token READ_TOKEN] [--out DIR] [--json]

Prints the run's results (live ones while it runs).
${OUTPUT}

${CONNECTION}

${EXIT_CODES}`,
  compare: `Usage: edgeperf compare BASE.json NEW.json [--fail-on EXPR]… [--summary FILE] [--junit FILE] [--json]

Compares two results.json files (as --out writes them): a row per metric and statistic
with the change, marked better or worse. No server is needed.
  --fail-on EXPR    exit 1 when a change crosses a limit (repeatable):
                    <tag>[.<stat>]<op><sign><number>[%], op > or <, sign + or -
                      time_to_first_token.p99>+10%   p99 TTFT grew by more than 10 %
                      request_throughput<-5%         throughput fell by more than 5 %
                      request_latency.p50>+20        p50 latency grew by more than 20 ms
  --summary FILE    append the table and verdict as Markdown (e.g. $GITHUB_STEP_SUMMARY)
  --junit FILE      write each --fail-on as a JUnit test case

Exit codes: 0 no --fail-on crossed, 1 one did (or a file lacks its value), 2 usage error.`,
  stop: `Usage: edgeperf stop RUN_ID [--force] [--token API_TOKEN]

Stops a run: gracefully (in-flight requests finish), or with --force (outstanding
requests are abandoned at once).

${CONNECTION}`,
  agent: `Usage: edgeperf agent RUN_ID --token AGENT_TOKEN [--name NAME] [--region R]

Joins the run as an external agent: leases credits and sends the requests from this
machine (builtin:mock is called at the server's /mock/v1/…). Exits 0 when the run is done.
  --name NAME    shown in the run's agent list (default cli-<hostname>)
  --region R     free-form label (default "local")

${CONNECTION}`,
  drain: `Usage: edgeperf drain [--wait] [--timeout S] | --resume | --status [--token API_TOKEN]

Service drain before a redeploy: refuse new runs and let active ones finish.
  (no flag)     start draining
  --timeout S   runs still active S seconds from now (0 to 3600) are force-stopped
                (stop reason service_drain; their results stay served for their grace
                window); without it the drain waits for them for ever, or keeps
                the deadline an earlier --timeout set
  --wait        start draining and wait until no run is active (phase "drained"),
                showing the runs still active; exits 1 if the service is resumed meanwhile
  --resume      accept new runs again (and drop the deadline)
  --status      show the phase, the deadline and the active runs

${CONNECTION}`,
  dataset: `Usage: edgeperf dataset upload FILE --type TYPE [--sharegpt-multi-turn]
       edgeperf dataset list
       edgeperf dataset delete DATASET_ID

Datasets on the server (API token), for runs' --input-file or workload.dataset.
  upload    checks FILE line by line (a bad line is named by its number, nothing is
            sent), then uploads it unless the server already holds the same content;
            prints the dataset's id. --type: single_turn, multi_turn, mooncake_trace
            (AIPerf's JSONL layouts) or sharegpt (a JSON array of {conversations:
            [{from, value}]}, converted to single_turn, or multi_turn with
            --sharegpt-multi-turn)
  list      every dataset: id, type, items, bytes, created
  delete    deletes one; runs that already use it may fail to read it

${CONNECTION}`,
  demo: `Usage: edgeperf demo [run's spec flags] [--json]

Starts the Worker locally (wrangler dev on a free port, a fresh API token and
storage), benchmarks builtin:mock (streaming, concurrency 8, 200 requests, 2 edge
agents, mock TTFT 40 ms, ITL 8 ms), prints the results and stops the server.
Spec flags, as for \`run\`, change the benchmark. This is \`npm start\`.`,
  dev: `Usage: edgeperf dev [--port 8787] [--token dev-token] [-- WRANGLER_ARGS…]

Runs the Worker locally (wrangler dev on 127.0.0.1) with a fixed API token and keeps
it running; prints a ready-to-paste \`edgeperf run\` line. This is \`npm run dev\`.
Example: npm run dev -- -- --var ALLOWED_TARGETS:localhost:*`,
};

export const MAIN = `edgeperf — benchmark OpenAI-compatible LLM endpoints and HTTP APIs from Cloudflare's edge

Usage: edgeperf <command> [flags]

Commands:
  run               create a run, follow it live, print the results (a list such as
                    --concurrency 1,2,4, or --search-slo, runs an experiment: a run per level)
  status RUN_ID     status snapshot of a run
  watch RUN_ID      follow a run live until it completes
  results RUN_ID    results of a run (--out DIR writes the AIPerf exports and report.html)
  compare A B       compare two results.json files (--fail-on for CI)
  stop RUN_ID       stop a run (--force: abandon in-flight requests)
  agent RUN_ID      join a run as an external agent from this machine
  drain             service drain: --wait, --timeout S, --resume, --status
  dataset           upload, list or delete datasets (prompts from a file)
  demo              start a local server, benchmark the mock, stop (npm start)
  dev               run a local server for exploration (npm run dev)

Run \`edgeperf <command> --help\` for its flags.

Example:
  edgeperf run --server http://127.0.0.1:8787 --token dev-token --url builtin:mock \\
    --streaming --concurrency 8 --request-count 200 --threshold "time_to_first_token.p99<500"

${EXIT_CODES}`;

export function helpFor(command: string): string {
  return (Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined) ?? MAIN;
}
