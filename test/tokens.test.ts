// Token hashing (contract/tokens.ts): the hex digest every stored token hash and every
// comparison uses, against published SHA-256 test vectors.
import { describe, expect, it } from "vitest";
import { hashesEqual, sha256Hex } from "../contract/tokens";

describe("sha256Hex", () => {
  it("gives the published SHA-256 digests, as 64 lowercase hex digits", async () => {
    expect(await sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(await sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(await sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
  });

  it("compares hashes by content only", async () => {
    const a = await sha256Hex("epa_token");
    expect(hashesEqual(a, await sha256Hex("epa_token"))).toBe(true);
    expect(hashesEqual(a, await sha256Hex("epa_tokeN"))).toBe(false);
  });
});
