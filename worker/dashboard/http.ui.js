// Browser side: the dashboard pages' calls to the API (the run dashboard and the
// experiment page). The read token travels only in the Authorization header.

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
