import { describe, expect, it } from "vitest";
import { StatusError } from "../worker/errors";
import { checkTargetUrl, redactUrl } from "../worker/targets";

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

  it("does not let an IPv4 pattern be dodged by another spelling of the same address", () => {
    // The URL parser turns 0x7f.1 into 127.0.0.1: both sides compare normalized.
    expect(() => checkTargetUrl("http://0x7f.1:9000/", ALLOWED, "target")).not.toThrow();
    expectRefused("http://0x7f.2:9000/", 403, "target_not_allowed");
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
