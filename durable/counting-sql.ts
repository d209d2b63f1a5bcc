// One RunCoordinator's SQLite, statement by statement, with the rows each wrote summed
// (SqlStorageCursor.rowsWritten: what Cloudflare bills). Shared by the run's tables
// (run-store.ts, lease-table.ts, call-log.ts) so the count covers them all.

export type Row = Record<string, SqlStorageValue>;

export class CountingSql {
  /** Rows written by this instance's statements (in memory: it starts again after eviction). */
  written = 0;

  constructor(private readonly sql: SqlStorage) {}

  /** Runs one statement to its end and counts the rows it wrote. */
  exec(query: string, ...params: SqlStorageValue[]): Row[] {
    const cursor = this.sql.exec(query, ...params);
    const rows = cursor.toArray();
    this.written += cursor.rowsWritten;
    return rows;
  }
}
