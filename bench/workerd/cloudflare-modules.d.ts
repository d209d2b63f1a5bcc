// bench/ is typechecked with Node's types (tsconfig.node.json), but the files in
// bench/workerd/ run inside workerd. These are the few workerd modules they use, typed
// just enough for that check; at run time @cloudflare/vitest-plugin provides them.

declare module "cloudflare:workers" {
  /** The Worker's bindings (wrangler.toml plus the bench config's). */
  export const env: {
    RUN_COORDINATOR: {
      idFromString(id: string): unknown;
      get(id: unknown): unknown;
    };
    BENCH_QUICK?: string;
    BENCH_ONLY?: string;
    BENCH_TARGET?: string;
  };
  /** The Worker's own exports; `default.fetch` calls the real router. */
  export const exports: { default: { fetch(request: Request): Promise<Response> } };
}

declare module "cloudflare:test" {
  type SqlValue = string | number | null | ArrayBuffer;
  interface Cursor {
    toArray(): Array<Record<string, SqlValue>>;
    one(): Record<string, SqlValue>;
  }
  interface SqlStorage {
    readonly databaseSize: number;
    exec(query: string, ...bindings: SqlValue[]): Cursor;
  }
  export function runInDurableObject<R>(
    stub: unknown,
    fn: (instance: unknown, state: { storage: { sql: SqlStorage } }) => R | Promise<R>,
  ): Promise<R>;
}
