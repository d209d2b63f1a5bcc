// Which URLs a run may send traffic to (DESIGN §6): http(s) only, and the host must
// match an ALLOWED_TARGETS pattern. Both sides are normalized by the WHATWG URL parser,
// the same parser fetch() uses later, so what is checked here is what gets called.
// "builtin:mock" never reaches this module: the spec parser handles it.

import { StatusError } from "./errors";

export type TargetUse = "target" | "notify";

interface Pattern {
  host: string;
  wildcard: boolean; // "*.example.com": any subdomain at any depth, never the apex
  port: string | undefined; // undefined = any port
}

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443" };

// One trailing dot is the DNS root ("example.com." is example.com); more is malformed.
function stripDot(host: string): string {
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

function hasEmptyLabel(host: string): boolean {
  return !host.startsWith("[") && host.split(".").some((label) => label === "");
}

// Runs the pattern's host through the URL parser so IDNs, IPv6 spellings and numeric
// IPv4 forms compare equal to what a target URL normalizes to. Anything that is not a
// bare host (a path, userinfo, a port) makes the pattern void: fail closed.
function normalizePatternHost(raw: string): string | undefined {
  if (raw === "" || /[/?#@\\\s]/.test(raw)) return undefined;
  try {
    const u = new URL(`http://${raw}/`);
    if (u.host !== u.hostname || u.username !== "" || u.pathname !== "/") return undefined;
    const host = stripDot(u.hostname);
    return host === "" || hasEmptyLabel(host) ? undefined : host;
  } catch {
    return undefined;
  }
}

function normalizePort(raw: string): string | undefined {
  if (!/^\d{1,5}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n >= 1 && n <= 65535 ? String(n) : undefined;
}

function parsePattern(raw: string): Pattern | undefined {
  let hostPart = raw;
  let portPart: string | undefined;
  if (raw.startsWith("[")) {
    const end = raw.indexOf("]");
    if (end < 0) return undefined;
    hostPart = raw.slice(0, end + 1);
    const rest = raw.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return undefined;
      portPart = rest.slice(1);
    }
  } else {
    const colons = raw.split(":").length - 1;
    if (colons > 1) {
      hostPart = `[${raw}]`; // a bare IPv6 literal, which cannot carry a port
    } else if (colons === 1) {
      const i = raw.indexOf(":");
      hostPart = raw.slice(0, i);
      portPart = raw.slice(i + 1);
    }
  }
  let port: string | undefined;
  if (portPart !== undefined && portPart !== "*") {
    port = normalizePort(portPart);
    if (port === undefined) return undefined;
  }
  const wildcard = hostPart.startsWith("*.");
  const host = normalizePatternHost(wildcard ? hostPart.slice(2) : hostPart);
  if (host === undefined || (wildcard && host.startsWith("["))) return undefined;
  return { host, wildcard, port };
}

function matches(p: Pattern, host: string, port: string): boolean {
  if (p.port !== undefined && p.port !== port) return false;
  if (!p.wildcard) return host === p.host;
  // The leading dot anchors the match at a label boundary: "evilexample.com" and
  // "example.com.attacker.net" do not end with ".example.com".
  return host.endsWith(`.${p.host}`);
}

export function checkTargetUrl(raw: string, allowed: string[], what: TargetUse): URL {
  const field = `${what}.url`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Never echo the URL itself: its query string may hold a key.
    throw new StatusError(400, "invalid_target", `${field} is not a valid absolute URL.`);
  }
  const defaultPort = DEFAULT_PORTS[url.protocol];
  if (defaultPort === undefined) {
    throw new StatusError(400, "invalid_target", `${field} must use http: or https:.`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new StatusError(400, "invalid_target", `${field} must not contain credentials (user:pass@); use target.headers or target.apiKey.`);
  }
  const host = stripDot(url.hostname);
  if (host === "" || hasEmptyLabel(host)) {
    throw new StatusError(400, "invalid_target", `${field} has no valid host.`);
  }
  const port = url.port === "" ? defaultPort : url.port;
  const ok = allowed.some((raw) => {
    const p = parsePattern(raw);
    return p !== undefined && matches(p, host, port);
  });
  if (!ok) {
    throw new StatusError(403, "target_not_allowed", `${field}: host ${host}:${port} is not in ALLOWED_TARGETS.`);
  }
  return url;
}

// With `path`, the path is hidden too: webhook URLs carry their secret there.
export function redactUrl(u: string, opts: { path?: boolean } = {}): string {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return "REDACTED"; // cannot tell which part is secret, so show none of it
  }
  url.username = "";
  url.password = "";
  if (url.search !== "") {
    const redacted = new URLSearchParams();
    for (const key of url.searchParams.keys()) redacted.append(key, "REDACTED");
    url.search = redacted.toString();
  }
  if (opts.path && url.pathname !== "/" && url.pathname !== "") url.pathname = "/REDACTED";
  // Fragments never reach the server but do carry tokens (OAuth implicit flow).
  if (url.hash !== "") url.hash = "REDACTED";
  return url.href;
}
