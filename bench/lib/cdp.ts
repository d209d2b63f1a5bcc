// CPU profiles of workerd's isolate through wrangler dev's inspector (Chrome DevTools
// protocol over a WebSocket), and a summary of where the time went.

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export class Inspector {
  private ws: WebSocket | null = null;
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();

  async connect(inspectorPort: number): Promise<void> {
    const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
    const url = targets[0]?.webSocketDebuggerUrl;
    if (!url) throw new Error("no inspector target");
    // wrangler's inspector proxy refuses a connection without an allowed Origin; Node's
    // WebSocket (undici) takes extra headers in its second argument.
    const Ws = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;
    const ws = new Ws(url, { headers: { Origin: "http://localhost" } });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("inspector connection timed out")), 10_000);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error("inspector connection failed"));
      };
    });
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result);
    };
    this.ws = ws;
  }

  send<T = any>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const ws = this.ws;
    if (!ws) throw new Error("not connected");
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector: no answer to ${method}`));
      }, 60_000);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(samplingIntervalUs = 200): Promise<void> {
    await this.send("Profiler.enable");
    await this.send("Profiler.setSamplingInterval", { interval: samplingIntervalUs });
    await this.send("Profiler.start");
  }

  async stop(): Promise<CpuProfile> {
    const r = await this.send<{ profile: CpuProfile }>("Profiler.stop");
    return r.profile;
  }

  close(): void {
    this.ws?.close();
    this.ws = null;
  }
}

export interface Hot {
  name: string;
  selfMs: number;
  selfPct: number;
  totalPct?: number;
}

/**
 * Maps a line of wrangler's bundle to the source module it came from: esbuild marks each
 * module with a `// path/to/module.ts` comment line where its code begins.
 */
export function moduleMap(bundle: string | null): (line: number) => string {
  if (!bundle) return () => "bundle";
  const marks: Array<[number, string]> = [];
  bundle.split("\n").forEach((text, i) => {
    const m = /^\/\/ ((?:worker|durable|agent|contract|mock|node_modules)\/\S+\.(?:ts|js|mjs))$/.exec(text);
    if (m) marks.push([i, m[1]!.replace(/^node_modules\/(?:\.pnpm\/)?/, "npm:")]);
  });
  return (line) => {
    let found = "bundle";
    for (const [at, name] of marks) {
      if (at > line) break;
      found = name;
    }
    return found;
  };
}

/** Self time by function and by source module (native functions by their own name). */
export function summarize(
  p: CpuProfile,
  bundle: string | null,
  top = 25,
): { totalMs: number; idlePct: number; functions: Hot[]; files: Hot[] } {
  const where = moduleMap(bundle);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  const totalMs = (p.endTime - p.startTime) / 1000;
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let idle = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    const cf = n.callFrame;
    if (cf.functionName === "(idle)") idle += ms;
    const mod = cf.url === "index.js" ? where(cf.lineNumber) : cf.url;
    const name = `${cf.functionName || "(anonymous)"}${mod ? ` ${mod}:${cf.lineNumber + 1}` : " (native)"}`;
    fn.set(name, (fn.get(name) ?? 0) + ms);
    const f = mod || `${cf.functionName} (native)`;
    file.set(f, (file.get(f) ?? 0) + ms);
  }
  const busy = totalMs - idle;
  const rank = (m: Map<string, number>): Hot[] =>
    [...m.entries()]
      .filter(([k]) => !k.startsWith("(idle)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, selfMs: Math.round(ms), selfPct: Math.round((1000 * ms) / busy) / 10 }));
  return { totalMs, idlePct: Math.round((1000 * idle) / totalMs) / 10, functions: rank(fn), files: rank(file) };
}
