// GET /v1/runs: the active runs, a page at a time, in (createdAt, id) order.
// Storage is per file, so the runs listed are this file's alone.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, createRun } from "./helpers";

const fleet = () => env.FLEET.get(env.FLEET.idFromName("fleet"));
const newId = () => env.RUN_COORDINATOR.newUniqueId().toString();

interface Listed {
  id: string;
  createdAt: string;
}

/** Every page of GET /v1/runs with this limit, following nextCursor. */
async function allPages(limit: number): Promise<Listed[][]> {
  const pages: Listed[][] = [];
  let cursor: string | null = null;
  do {
    const query: string = `?limit=${limit}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
    const r = await call("GET", `/v1/runs${query}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    pages.push(r.body.runs);
    cursor = r.body.nextCursor;
    expect(pages.length).toBeLessThan(100);
  } while (cursor !== null);
  return pages;
}

describe("GET /v1/runs", () => {
  it("pages through the active runs in (createdAt, id) order; the last page's nextCursor is null", async () => {
    // Four rows created in the same millisecond, so the order between them is the id's,
    // and page boundaries fall between runs with equal createdAt.
    const same = [newId(), newId(), newId(), newId()];
    for (const id of same) expect((await fleet().admit(id, 1_000)).ok).toBe(true);
    const created = [await createRun(), await createRun(), await createRun()];
    const expected = [...same.sort(), ...created.map((r) => r.id)];

    const whole = await call("GET", "/v1/runs");
    expect(whole.body.runs.map((r: Listed) => r.id)).toEqual(expected);
    expect(whole.body).toMatchObject({ nextCursor: null, activeRuns: 7, phase: "accepting" });

    const pages = await allPages(2);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 2, 1]);
    expect(pages.flat()).toEqual(whole.body.runs);
    const exact = await allPages(7);
    expect(exact.map((p) => p.length)).toEqual([7]);

    for (const id of same) await fleet().ended(id);
    for (const r of created) await call("POST", `/v1/runs/${r.id}/stop`, { body: { mode: "force" } });
    expect((await call("GET", "/v1/runs")).body).toMatchObject({ runs: [], nextCursor: null, activeRuns: 0 });
  });

  it("neither repeats nor skips a run that stays active while runs end between pages", async () => {
    const ids = [newId(), newId(), newId(), newId(), newId()];
    for (const [i, id] of ids.entries()) expect((await fleet().admit(id, 2_000 + i)).ok).toBe(true);
    const first = await call("GET", "/v1/runs?limit=2");
    expect(first.body.runs.map((r: Listed) => r.id)).toEqual(ids.slice(0, 2));
    // The last run of the first page and the first of the next one end meanwhile.
    await fleet().ended(ids[1]!);
    await fleet().ended(ids[2]!);
    const second = await call("GET", `/v1/runs?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.runs.map((r: Listed) => r.id)).toEqual(ids.slice(3, 5));
    expect(second.body.nextCursor).toBeNull();
    for (const id of ids) await fleet().ended(id);
  });

  it("answers 100 runs by default and up to 1000 with ?limit=1000", async () => {
    const ids = Array.from({ length: 150 }, () => newId());
    for (const [i, id] of ids.entries()) expect((await fleet().admit(id, 3_000 + i)).ok).toBe(true);
    const byDefault = await call("GET", "/v1/runs");
    expect(byDefault.body.runs).toHaveLength(100);
    expect(byDefault.body.nextCursor).toEqual(expect.any(String));
    const rest = await call("GET", `/v1/runs?cursor=${byDefault.body.nextCursor}`);
    expect(rest.body.runs.map((r: Listed) => r.id)).toEqual(ids.slice(100));
    const max = await call("GET", "/v1/runs?limit=1000");
    expect(max.body.runs.map((r: Listed) => r.id)).toEqual(ids);
    expect(max.body.nextCursor).toBeNull();
    for (const id of ids) await fleet().ended(id);
  });

  it("refuses a bad limit or cursor with a 400 naming the parameter", async () => {
    for (const limit of ["0", "1001", "-1", "1.5", "ten", "", "1e2"]) {
      const r = await call("GET", `/v1/runs?limit=${limit}`);
      expect(r.status, limit).toBe(400);
      expect(r.body.error).toEqual({ code: "invalid_query", message: "limit must be an integer from 1 to 1000." });
    }
    const garbage = btoa("not a cursor").replace(/=+$/, "");
    for (const cursor of ["", "%%%", "!!", garbage, btoa("12:").replace(/=+$/, ""), "a".repeat(400)]) {
      const r = await call("GET", `/v1/runs?cursor=${cursor}`);
      expect(r.status, cursor).toBe(400);
      expect(r.body.error.code).toBe("invalid_query");
      expect(r.body.error.message).toMatch(/^cursor /);
    }
  });

  it("needs the API token", async () => {
    expect((await call("GET", "/v1/runs?limit=1", { token: null })).status).toBe(401);
  });
});
