import { describe, expect, it } from "vitest";
import { hashesEqual } from "../../src/auth/compare";
import { sha256Hex } from "../../src/auth/keys";

describe("hashesEqual", () => {
  it("is true only for the same hash, whatever position a difference is at", async () => {
    const h = await sha256Hex("sk_example");
    expect(hashesEqual(h, h.slice())).toBe(true);
    for (const at of [0, 31, 63]) {
      const other = h.slice(0, at) + (h[at] === "0" ? "1" : "0") + h.slice(at + 1);
      expect(hashesEqual(other, h)).toBe(false);
    }
    expect(hashesEqual(h.slice(0, 63), h)).toBe(false);
    expect(hashesEqual("", h)).toBe(false);
  });
});
