// Browser side: the dashboard pages' calls to the API (the run dashboard and the
// experiment page), and their event streams. The read token travels only in the
// Authorization header.

export class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Not worth retrying: the token or the id is wrong, or the thing is gone. */
export const fatal = (e) => e instanceof HttpError && (e.status === 401 || e.status === 403 || e.status === 404);

/** A fetch with the read token that throws HttpError, with the API's error code and message, on any non-2xx. */
export function apiWith(token) {
  return async function api(path, init = {}) {
    const res = await fetch(path, { ...init, cache: "no-store", headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
    if (!res.ok) {
      let code = "http_error";
      let message = `HTTP ${res.status}`;
      try {
        const body = await res.json();
        code = body.error?.code ?? code;
        message = body.error?.message ?? message;
      } catch {
        /* not JSON */
      }
      throw new HttpError(res.status, code, message);
    }
    return res;
  };
}

/**
 * Reads one SSE stream at `path` with `api`, resuming after `cursor.lastEventId` and keeping
 * the server's `retry:` in `cursor.retryMs`. Each event's JSON goes to `onEvent(event,
 * payload)`; "complete" and "reconnect" end the stream there, and "error" throws HttpError
 * (404 when its code is `goneCode`). Resolves with how the stream ended ("complete",
 * "reconnect", or "ended": it closed or broke) and how many events it carried. Throws only
 * when the stream cannot be opened.
 */
export async function followEvents(api, path, cursor, onEvent, goneCode) {
  const headers = { accept: "text/event-stream" };
  if (cursor.lastEventId !== null) headers["last-event-id"] = cursor.lastEventId;
  const res = await api(path, { headers });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let events = 0;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      return { how: "ended", events }; // the connection broke
    }
    if (chunk.done) return { how: "ended", events };
    buffer = (buffer + chunk.value).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        const value = line.slice(line.indexOf(":") + 1).replace(/^ /, "");
        if (line.startsWith("event:")) event = value.trim();
        else if (line.startsWith("data:")) data.push(value);
        else if (line.startsWith("id:")) cursor.lastEventId = value;
        else if (line.startsWith("retry:") && /^\d+$/.test(value)) cursor.retryMs = Number(value);
      }
      if (data.length === 0) continue;
      events++;
      const payload = JSON.parse(data.join("\n"));
      if (event === "error") {
        throw new HttpError(payload.error?.code === goneCode ? 404 : 500, payload.error?.code, payload.error?.message);
      }
      onEvent(event, payload);
      if (event === "complete" || event === "reconnect") {
        reader.cancel().catch(() => {});
        return { how: event, events };
      }
    }
  }
}

/**
 * Follows streams one after another (`follow` reads one, as followEvents) until one says
 * "complete". Returns early, for polling to take over, when a stream cannot be opened or
 * ends before its first event; waits `cursor.retryMs` before reopening one that broke.
 * `show(label)` tells the page's connection indicator.
 */
export async function streamUntilDone(follow, cursor, show) {
  for (;;) {
    show("live");
    let r;
    try {
      r = await follow();
    } catch (e) {
      if (fatal(e)) throw e;
      return;
    }
    if (r.how === "complete") return;
    if (r.how === "ended") {
      if (r.events === 0) return;
      show("reconnecting…");
      await new Promise((resolve) => setTimeout(resolve, cursor.retryMs));
    }
  }
}
