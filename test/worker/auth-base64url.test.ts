/** Base64url as tokens and cursors carry it (src/auth/base64url.ts): what comes back from clients. */
import { describe, expect, it } from "vitest";
import { fromBase64Url, toBase64Url } from "../../src/auth/base64url";

describe("base64url", () => {
  it("round-trips bytes of every length, unpadded and URL-safe", () => {
    for (let n = 0; n <= 40; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      const text = toBase64Url(bytes);
      expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(text.length % 4).not.toBe(1);
      expect(fromBase64Url(text)).toEqual(bytes);
    }
    // The characters that differ from base64's, in both directions.
    expect(toBase64Url(new Uint8Array([0xfb, 0xff, 0xbf]))).toBe("-_-_");
    expect(fromBase64Url("-_-_")).toEqual(new Uint8Array([0xfb, 0xff, 0xbf]));
  });

  it("answers undefined, never throws, for text that is not base64url", () => {
    for (const text of ["A", "AAAAA", "AAAA=", "AA==", "+/AA", "AA AA", "AAÀA", "AA\nA", "A".repeat(201)]) {
      expect(fromBase64Url(text), JSON.stringify(text)).toBeUndefined();
    }
  });
});
