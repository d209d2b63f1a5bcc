import { describe, expect, it } from "vitest";
import { StatusError } from "../contract/errors";
import { checkTargetUrl, redactUrl, specialRange } from "../contract/targets";

const ALLOWED = ["api.example.org", "*.example.com", "127.0.0.1:*", "ports.test:8443", "[::1]:8080", "bücher.example"];

function refusal(raw: string, allowed = ALLOWED, what: "target" | "notify" = "target"): StatusError {
  try {
    checkTargetUrl(raw, allowed, what);
  } catch (e) {
    if (e instanceof StatusError) return e;
    throw e;
  }
  throw new Error(`${raw} was accepted`);
}

function expectRefused(raw: string, status: number, code: string, allowed = ALLOWED): StatusError {
  const e = refusal(raw, allowed);
  expect({ status: e.status, code: e.code }).toEqual({ status, code });
  return e;
}

describe("checkTargetUrl: schemes and URL shape", () => {
  it("accepts an https URL whose host is allowed and returns the parsed URL", () => {
    const url = checkTargetUrl("https://api.example.org/v1/chat/completions", ALLOWED, "target");
    expect(url.href).toBe("https://api.example.org/v1/chat/completions");
  });

  it("accepts a plain http URL whose host is allowed", () => {
    expect(checkTargetUrl("http://api.example.org/", ALLOWED, "target").protocol).toBe("http:");
  });

  it.each(["ftp://api.example.org/file", "javascript:alert(1)", "data:text/plain,hi", "file:///etc/passwd", "ws://api.example.org/"])(
    "refuses the non-http scheme of %s with 400 invalid_target",
    (raw) => {
      expectRefused(raw, 400, "invalid_target");
    },
  );

  it("refuses a string that is not an absolute URL with 400 invalid_target", () => {
    expectRefused("api.example.org/v1", 400, "invalid_target");
  });

  it("refuses builtin:mock, which only the spec parser understands", () => {
    expectRefused("builtin:mock", 400, "invalid_target");
  });

  it("refuses credentials in the URL even when the host is allowed", () => {
    expectRefused("https://user:secret@api.example.org/", 400, "invalid_target");
    expectRefused("https://user@api.example.org/", 400, "invalid_target");
  });

  it("refuses a URL with an empty label in its host", () => {
    expectRefused("http://a..example.com/", 400, "invalid_target");
  });

  it("names the field it checked in its messages", () => {
    expect(refusal("ftp://x/", ALLOWED, "notify").message).toContain("notify.url");
    expect(refusal("ftp://x/", ALLOWED, "target").message).toContain("target.url");
  });
});

describe("checkTargetUrl: the allowlist", () => {
  it("refuses every target when the allowlist is empty", () => {
    expectRefused("https://api.example.org/", 403, "target_not_allowed", []);
  });

  it("refuses a host that is not listed with 403 target_not_allowed naming the host", () => {
    const e = expectRefused("https://other.example.org/v1?key=sk-secret", 403, "target_not_allowed");
    expect(e.message).toContain("other.example.org");
  });

  it("never echoes the path or query string of a refused URL", () => {
    const e = refusal("https://other.example.org/secret-path?key=sk-secret");
    expect(e.message).not.toContain("sk-secret");
    expect(e.message).not.toContain("secret-path");
  });

  it("matches hosts case-insensitively and ignores one trailing dot", () => {
    expect(() => checkTargetUrl("https://API.Example.ORG./v1", ALLOWED, "target")).not.toThrow();
  });

  it("lets a wildcard match a subdomain at any depth", () => {
    expect(() => checkTargetUrl("https://a.example.com/", ALLOWED, "target")).not.toThrow();
    expect(() => checkTargetUrl("https://a.b.c.example.com/", ALLOWED, "target")).not.toThrow();
  });

  it("does not let a wildcard match its apex domain", () => {
    expectRefused("https://example.com/", 403, "target_not_allowed");
  });

  it("does not let a wildcard match a host that merely ends with the same letters", () => {
    expectRefused("https://evilexample.com/", 403, "target_not_allowed");
  });

  it("does not let an allowed name appear as a prefix of an attacker's domain", () => {
    expectRefused("https://example.com.attacker.net/", 403, "target_not_allowed");
    expectRefused("https://api.example.org.attacker.net/", 403, "target_not_allowed");
  });

  it("does not let an exact pattern match a subdomain of it", () => {
    expectRefused("https://x.api.example.org/", 403, "target_not_allowed");
  });

  it("lets a pattern without a port match any port", () => {
    expect(() => checkTargetUrl("https://api.example.org:9999/", ALLOWED, "target")).not.toThrow();
  });

  it("lets a pattern with port * match any port", () => {
    expect(() => checkTargetUrl("http://127.0.0.1:8787/mock", ALLOWED, "target")).not.toThrow();
    expect(() => checkTargetUrl("http://127.0.0.1/", ALLOWED, "target")).not.toThrow();
  });

  it("lets a pattern with a port match only that port", () => {
    expect(() => checkTargetUrl("https://ports.test:8443/", ALLOWED, "target")).not.toThrow();
    expectRefused("https://ports.test:8444/", 403, "target_not_allowed");
    expectRefused("https://ports.test/", 403, "target_not_allowed");
  });

  it("compares a pattern port with the scheme's default port when the URL has none", () => {
    const allowed = ["secure.test:443", "plain.test:80"];
    expect(() => checkTargetUrl("https://secure.test/", allowed, "target")).not.toThrow();
    expect(() => checkTargetUrl("http://plain.test/", allowed, "target")).not.toThrow();
    expectRefused("http://secure.test/", 403, "target_not_allowed", allowed);
  });

  it("matches a bracketed IPv6 literal with its port", () => {
    expect(() => checkTargetUrl("http://[::1]:8080/", ALLOWED, "target")).not.toThrow();
    expect(() => checkTargetUrl("http://[0:0:0:0:0:0:0:1]:8080/", ALLOWED, "target")).not.toThrow();
    expectRefused("http://[::1]:8081/", 403, "target_not_allowed");
    expectRefused("http://[::2]:8080/", 403, "target_not_allowed");
  });

  it("matches an internationalized host whether written in Unicode or punycode", () => {
    expect(() => checkTargetUrl("https://xn--bcher-kva.example/", ALLOWED, "target")).not.toThrow();
    expect(() => checkTargetUrl("https://BÜCHER.example/", ALLOWED, "target")).not.toThrow();
  });

  it("ignores malformed patterns instead of letting them match anything", () => {
    const allowed = ["evil.com/@api.example.org", "host:notaport", "[::1", ""];
    expectRefused("https://evil.com/", 403, "target_not_allowed", allowed);
    expectRefused("https://host/", 403, "target_not_allowed", allowed);
  });
});

describe("checkTargetUrl: IP literals", () => {
  // Every one of these is 127.0.0.1 (or 0.0.0.0) once the URL parser is done with it.
  it.each([
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.0.0.01/",
    "http://127.0.0.1./",
    "http://%31%32%37.0.0.1/",
    "http://１２７．０．０．１/",
    "http://127。0。0。1/",
    "http://0/",
    "http:0x7f.1/",
    "http:\\\\0x7f.1\\",
    "  http://0x7f.1/  ",
    "http://0x7f\t.1/",
    "HTTP://0X7F.1:8787/",
  ])("refuses the non-canonical IPv4 spelling %j with 400 even though 127.0.0.1:* is allowed", (raw) => {
    const e = expectRefused(raw, 400, "invalid_target");
    expect(e.message).toContain("non-canonical");
  });

  it("accepts the canonical dotted quad that an explicit pattern names", () => {
    expect(checkTargetUrl("http://127.0.0.1:8787/mock/v1/models", ALLOWED, "target").href).toBe("http://127.0.0.1:8787/mock/v1/models");
  });

  const WILDCARDS_ONLY = ["*.example.com", "api.example.org"];
  it.each([
    ["http://127.0.0.1/", "loopback"],
    ["http://127.255.255.254:8080/", "loopback"],
    ["http://10.1.2.3/", "private"],
    ["http://172.16.0.1/", "private"],
    ["http://172.31.255.255/", "private"],
    ["http://192.168.1.1/", "private"],
    ["http://169.254.1.1/", "link-local"],
    ["http://169.254.169.254/latest/meta-data/", "cloud metadata"],
    ["http://100.64.0.1/", "carrier-grade NAT"],
    ["http://100.127.255.255/", "carrier-grade NAT"],
    ["http://0.0.0.0/", "unspecified"],
    ["http://0.1.2.3/", "unspecified"],
    ["http://255.255.255.255/", "broadcast"],
    ["http://224.0.0.1/", "multicast"],
    ["http://239.255.255.250/", "multicast"],
    ["http://240.0.0.1/", "reserved"],
    ["http://192.0.2.1/", "documentation"],
    ["http://198.18.0.1/", "benchmarking"],
    ["http://[::1]/", "loopback"],
    ["http://[0:0:0:0:0:0:0:1]/", "loopback"],
    ["http://[::]/", "unspecified"],
    ["http://[fc00::1]/", "private (unique local)"],
    ["http://[fd12:3456::1]/", "private (unique local)"],
    ["http://[fe80::1]/", "link-local"],
    ["http://[febf:ffff::1]/", "link-local"],
    ["http://[fd00:ec2::254]/", "cloud metadata"],
    ["http://[::ffff:127.0.0.1]/", "IPv4-mapped"],
    ["http://[::ffff:7f00:1]/", "IPv4-mapped"],
    ["http://[::ffff:169.254.169.254]/", "IPv4-mapped"],
    ["http://[::ffff:8.8.8.8]/", "IPv4-mapped"],
    ["http://[::127.0.0.1]/", "IPv4-compatible"],
    ["http://[64:ff9b::a9fe:a9fe]/", "NAT64"],
    ["http://[2002:7f00:1::]/", "6to4"],
    ["http://[2001::1]/", "Teredo"],
    ["http://[ff02::1]/", "multicast"],
  ])("refuses %s as a %s address when no pattern names it", (raw, label) => {
    const e = expectRefused(raw, 403, "target_not_allowed", WILDCARDS_ONLY);
    expect(e.message).toContain(label);
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "172.15.255.255",
    "172.32.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "169.253.255.255",
    "192.169.0.0",
    "223.255.255.255",
    "[2606:4700:4700::1111]",
    "[fbff::1]",
    "[fe7f::1]",
    "[2001:4860:4860::8888]",
  ])("does not put %s, just outside every special range, in one", (host) => {
    expect(specialRange(host)).toBeNull();
  });

  it("never lets a wildcard admit an IP literal, public or private", () => {
    const allowed = ["*.example.com", "*.0.0.1", "*.1", "*.8.8"];
    for (const raw of ["http://8.8.8.8/", "http://127.0.0.1/", "http://10.0.0.1/", "http://[2606:4700::1111]/"]) {
      expectRefused(raw, 403, "target_not_allowed", allowed);
    }
  });

  it("admits an IP literal only by a pattern naming exactly that address, and only on its port", () => {
    const allowed = ["10.0.0.5:8080"];
    expect(() => checkTargetUrl("http://10.0.0.5:8080/", allowed, "target")).not.toThrow();
    expectRefused("http://10.0.0.6:8080/", 403, "target_not_allowed", allowed);
    expectRefused("http://10.0.0.5:8081/", 403, "target_not_allowed", allowed);
  });

  it("admits a public IP literal by exact name too, and no neighbour of it", () => {
    expect(() => checkTargetUrl("https://8.8.8.8/", ["8.8.8.8"], "target")).not.toThrow();
    expectRefused("https://8.8.4.4/", 403, "target_not_allowed", ["8.8.8.8"]);
  });

  it("does not let an IPv4 pattern admit the same address written as IPv4-mapped IPv6", () => {
    expectRefused("http://[::ffff:127.0.0.1]:8787/", 403, "target_not_allowed");
  });

  it("admits an IPv4-mapped address when that exact literal is listed, in either spelling", () => {
    expect(() => checkTargetUrl("http://[::ffff:7f00:1]/", ["[::ffff:127.0.0.1]"], "target")).not.toThrow();
  });

  it("ignores a pattern that writes an IPv4 address in a non-canonical form", () => {
    expectRefused("http://127.0.0.1/", 403, "target_not_allowed", ["0x7f.1:*", "2130706433", "127.1", "127.0.0.1.", "%31%32%37.0.0.1"]);
  });

  it("refuses an IPv6 zone identifier", () => {
    expectRefused("http://[fe80::1%25eth0]/", 400, "invalid_target");
  });

  it("refuses port 0", () => {
    expectRefused("http://127.0.0.1:0/", 400, "invalid_target");
  });
});

describe("checkTargetUrl: disguised hosts", () => {
  it("refuses an '@' in the authority even when the userinfo is empty", () => {
    expectRefused("http://@api.example.org/", 400, "invalid_target");
    expectRefused("http://:@api.example.org/", 400, "invalid_target");
    expectRefused("http://api.example.org:443@attacker.net/", 400, "invalid_target");
    expectRefused("http://api.example.org@127.0.0.1:8787/", 400, "invalid_target");
  });

  it("treats a backslash as the end of the host, as fetch does, so '\\@' cannot smuggle another host", () => {
    expect(checkTargetUrl("http://api.example.org\\@attacker.net/", ALLOWED, "target").hostname).toBe("api.example.org");
    expectRefused("http://attacker.net\\@api.example.org/", 403, "target_not_allowed");
  });

  it("does not let a fragment or query string that holds an allowed name decide the host", () => {
    expectRefused("http://attacker.net#@api.example.org/", 403, "target_not_allowed");
    expectRefused("http://attacker.net?@api.example.org/", 403, "target_not_allowed");
    expectRefused("http://attacker.net/api.example.org", 403, "target_not_allowed");
  });

  it("does not let a percent-encoded dot join an allowed name to an attacker's domain", () => {
    expectRefused("http://api.example.org%2eattacker.net/", 403, "target_not_allowed");
    expectRefused("http://example.com%2eattacker.net/", 403, "target_not_allowed");
  });

  it("does not let a wildcard pattern match a suffix that is not a whole label", () => {
    expectRefused("https://xexample.com/", 403, "target_not_allowed");
    expectRefused("https://a.example.com.attacker.net/", 403, "target_not_allowed");
  });
});

describe("redactUrl", () => {
  it("replaces every query value and keeps the keys", () => {
    expect(redactUrl("https://h.example.com/v1?key=sk-1&model=m&key=sk-2")).toBe(
      "https://h.example.com/v1?key=REDACTED&model=REDACTED&key=REDACTED",
    );
  });

  it("removes userinfo", () => {
    const out = redactUrl("https://user:pass@h.example.com/path");
    expect(out).toBe("https://h.example.com/path");
  });

  it("keeps the path unless asked to hide it", () => {
    expect(redactUrl("https://hooks.example.com/services/T0/B0/secret")).toContain("/services/T0/B0/secret");
    expect(redactUrl("https://hooks.example.com/services/T0/B0/secret", { path: true })).toBe("https://hooks.example.com/REDACTED");
  });

  it("hides a fragment", () => {
    expect(redactUrl("https://h.example.com/#access_token=abc")).toBe("https://h.example.com/#REDACTED");
  });

  it("leaves builtin:mock unchanged", () => {
    expect(redactUrl("builtin:mock")).toBe("builtin:mock");
  });

  it("shows nothing of a string it cannot parse", () => {
    expect(redactUrl("not a url sk-secret")).toBe("REDACTED");
  });
});
