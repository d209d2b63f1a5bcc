// Which URLs a run may send traffic to (docs/SECURITY.md): http(s) only, and the host must
// match an ALLOWED_TARGETS pattern. Both sides are normalized by the WHATWG URL parser,
// the same parser fetch() uses later, so what is checked here is what gets called.
// "builtin:mock" never reaches this module: the spec parser handles it.
//
// IP literals get two extra rules, because the parser is generous with them and an IP
// is where SSRF lands (loopback, the cloud metadata address, the private network):
//   - An IPv4 address must be written as the plain dotted quad the parser would print.
//     "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "%31%32%37.0.0.1" all become
//     127.0.0.1 after parsing, so they are refused on the raw text, before the parser
//     can hide them. (IPv6 has one meaning per address, so its spellings are normalized.)
//   - Only a pattern naming exactly that address admits it ("127.0.0.1", "127.0.0.1:*",
//     "[::1]:8080"); a wildcard never does. Addresses in special-purpose ranges
//     (loopback, private, link-local, metadata, mapped IPv4…) are named in the refusal.
// What this module cannot see: a DNS name that resolves to a private address. See
// docs/SECURITY.md.

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

// ── IP literals ────────────────────────────────────────────────────────────────

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** A parsed hostname's IPv4 value; the parser prints every IPv4 host as a dotted quad. */
function ipv4Of(hostname: string): number | undefined {
  const m = DOTTED_QUAD.exec(hostname);
  if (!m) return undefined;
  return m.slice(1).reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** A parsed hostname's IPv6 value as eight 16-bit groups; the parser prints "[…]" in hex. */
function ipv6Of(hostname: string): number[] | undefined {
  if (!hostname.startsWith("[") || !hostname.endsWith("]")) return undefined;
  const [head = "", tail] = hostname.slice(1, -1).split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const zeros = 8 - left.length - right.length;
  return [...left, ...Array.from({ length: zeros }, () => 0), ...right];
}

const isIpHost = (hostname: string) => ipv4Of(hostname) !== undefined || ipv6Of(hostname) !== undefined;

function v4(cidr: string, label: string): (ip: number) => string | null {
  const [base = "", bits = "32"] = cidr.split("/");
  const start = ipv4Of(base) ?? 0;
  const size = 2 ** (32 - Number(bits));
  return (ip) => (ip >= start && ip < start + size ? label : null);
}

// First match wins, so the metadata and broadcast addresses come before their ranges.
const V4_RANGES = [
  v4("169.254.169.254/32", "cloud metadata"),
  v4("255.255.255.255/32", "broadcast"),
  v4("0.0.0.0/8", "unspecified"),
  v4("10.0.0.0/8", "private"),
  v4("100.64.0.0/10", "carrier-grade NAT"),
  v4("127.0.0.0/8", "loopback"),
  v4("169.254.0.0/16", "link-local"),
  v4("172.16.0.0/12", "private"),
  v4("192.0.0.0/24", "reserved"),
  v4("192.0.2.0/24", "documentation"),
  v4("192.88.99.0/24", "reserved"),
  v4("192.168.0.0/16", "private"),
  v4("198.18.0.0/15", "benchmarking"),
  v4("198.51.100.0/24", "documentation"),
  v4("203.0.113.0/24", "documentation"),
  v4("224.0.0.0/4", "multicast"),
  v4("240.0.0.0/4", "reserved"),
];

/** An IPv6 prefix given as leading groups and a bit length. */
function v6(prefix: number[], bits: number, label: string): (ip: number[]) => string | null {
  return (ip) => {
    for (let i = 0; i < 8 && bits > i * 16; i++) {
      const take = Math.min(16, bits - i * 16);
      const mask = (0xffff << (16 - take)) & 0xffff;
      if (((ip[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return null;
    }
    return label;
  };
}

const V6_RANGES = [
  v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified"),
  v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback"),
  v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, "cloud metadata"),
  v6([0, 0, 0, 0, 0, 0xffff], 96, "IPv4-mapped"),
  v6([0, 0, 0, 0, 0, 0], 96, "IPv4-compatible"),
  v6([0x64, 0xff9b], 96, "NAT64 (embeds IPv4)"),
  v6([0x64, 0xff9b, 1], 48, "NAT64 (embeds IPv4)"),
  v6([0x100, 0, 0, 0], 64, "discard"),
  v6([0x2001, 0], 32, "Teredo (embeds IPv4)"),
  v6([0x2001, 0xdb8], 32, "documentation"),
  v6([0x2001], 23, "reserved"),
  v6([0x2002], 16, "6to4 (embeds IPv4)"),
  v6([0x3fff], 20, "documentation"),
  v6([0xfc00], 7, "private (unique local)"),
  v6([0xfe80], 10, "link-local"),
  v6([0xfec0], 10, "site-local"),
  v6([0xff00], 8, "multicast"),
];

/** The special-purpose range a parsed IP hostname falls in, or null (or not an IP). */
export function specialRange(hostname: string): string | null {
  const a = ipv4Of(hostname);
  if (a !== undefined) return V4_RANGES.reduce<string | null>((hit, r) => hit ?? r(a), null);
  const b = ipv6Of(hostname);
  if (b !== undefined) return V6_RANGES.reduce<string | null>((hit, r) => hit ?? r(b), null);
  return null;
}

/**
 * The host exactly as written in a URL string, before the parser decodes and rewrites it,
 * following the WHATWG steps for http(s): outer whitespace and inner tabs/newlines are
 * dropped, any run of / and \ after the scheme is skipped, and the authority ends at the
 * first / \ ? #. `at` is true when the authority holds an "@" (userinfo, even empty).
 */
function rawAuthority(raw: string): { host: string; at: boolean } | undefined {
  const s = raw.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, "").replace(/[\t\n\r]/g, "");
  const m = /^[a-z][a-z0-9+.-]*:[/\\]*([^/\\?#]*)/i.exec(s);
  if (!m) return undefined;
  const authority = m[1] ?? "";
  const at = authority.includes("@");
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  if (hostPort.startsWith("[")) {
    const end = hostPort.indexOf("]");
    return end < 0 ? undefined : { host: hostPort.slice(0, end + 1), at };
  }
  const colon = hostPort.indexOf(":");
  return { host: colon < 0 ? hostPort : hostPort.slice(0, colon), at };
}

/** An IPv4 host is canonical when the text written is what the parser prints. */
function isCanonicalIpv4(rawHost: string, hostname: string): boolean {
  return ipv4Of(hostname) === undefined || rawHost === hostname;
}

// ── Patterns ───────────────────────────────────────────────────────────────────

// Runs the pattern's host through the URL parser so IDNs and IPv6 spellings compare
// equal to what a target URL normalizes to. Anything that is not a bare host (a path,
// userinfo, a port) or a non-canonical IPv4 makes the pattern void: fail closed.
function normalizePatternHost(raw: string): string | undefined {
  if (raw === "" || /[/?#@\\\s%]/.test(raw)) return undefined;
  try {
    const u = new URL(`http://${raw}/`);
    if (u.host !== u.hostname || u.username !== "" || u.pathname !== "/") return undefined;
    if (!isCanonicalIpv4(raw, u.hostname)) return undefined;
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
  // "*.0.0.1" is not a way to admit a range of addresses.
  if (host === undefined || (wildcard && isIpHost(host))) return undefined;
  return { host, wildcard, port };
}

function matches(p: Pattern, host: string, port: string): boolean {
  if (p.port !== undefined && p.port !== port) return false;
  if (!p.wildcard) return host === p.host;
  if (isIpHost(host)) return false; // an IP is only ever admitted by name
  // The leading dot anchors the match at a label boundary: "evilexample.com" and
  // "example.com.attacker.net" do not end with ".example.com".
  return host.endsWith(`.${p.host}`);
}

// ── The check ──────────────────────────────────────────────────────────────────

export function checkTargetUrl(raw: string, allowed: string[], what: TargetUse): URL {
  const field = `${what}.url`;
  const invalid = (why: string) => new StatusError(400, "invalid_target", `${field} ${why}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Never echo the URL itself: its query string may hold a key.
    throw invalid("is not a valid absolute URL.");
  }
  const defaultPort = DEFAULT_PORTS[url.protocol];
  if (defaultPort === undefined) throw invalid("must use http: or https:.");
  const written = rawAuthority(raw);
  if (written === undefined) throw invalid("has no valid host.");
  // "@" in the authority, even with empty userinfo ("http://@host/"), is a disguise.
  if (written.at || url.username !== "" || url.password !== "") {
    throw invalid("must not contain credentials (user:pass@); use target.headers or target.apiKey.");
  }
  if (!isCanonicalIpv4(written.host, url.hostname)) {
    throw invalid(`writes the IPv4 address ${url.hostname} in a non-canonical form; write it as a plain dotted quad.`);
  }
  const host = stripDot(url.hostname);
  if (host === "" || hasEmptyLabel(host)) throw invalid("has no valid host.");
  if (url.port === "0") throw invalid("has port 0.");
  const port = url.port === "" ? defaultPort : url.port;
  const ok = allowed.some((raw) => {
    const p = parsePattern(raw);
    return p !== undefined && matches(p, host, port);
  });
  if (!ok) {
    const range = specialRange(host);
    const why = range
      ? `${host} is a ${range} address; only an ALLOWED_TARGETS entry naming exactly that address admits it.`
      : isIpHost(host)
        ? `${host}:${port} is not in ALLOWED_TARGETS (an IP address is only admitted by an entry naming it, never by a wildcard).`
        : `host ${host}:${port} is not in ALLOWED_TARGETS.`;
    throw new StatusError(403, "target_not_allowed", `${field}: ${why}`);
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
