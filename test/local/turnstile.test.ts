import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DUMMY_TOKEN, type FakeTurnstile, startTurnstile, TEST_SECRETS } from "../../local/turnstile.ts";

let fake: FakeTurnstile;
beforeAll(async () => {
  fake = await startTurnstile();
});
afterAll(() => fake.close());

const form = (fields: Record<string, string>) =>
  fetch(fake.siteverifyUrl, { method: "POST", body: new URLSearchParams(fields) });
const json = (fields: Record<string, string>) =>
  fetch(fake.siteverifyUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(fields),
  });

describe("the local siteverify", () => {
  it("answers as Cloudflare does for its test secret keys, form-encoded or JSON", async () => {
    for (const post of [form, json]) {
      const passed = await post({
        secret: TEST_SECRETS.passes,
        response: DUMMY_TOKEN,
        remoteip: "203.0.113.9",
      });
      expect(passed.status).toBe(200);
      const ok = (await passed.json()) as Record<string, unknown>;
      expect(ok).toMatchObject({
        success: true,
        "error-codes": [],
        hostname: "example.com",
        action: "",
        cdata: "",
      });
      expect(Number.isNaN(Date.parse(String(ok.challenge_ts)))).toBe(false);
      const expectations: [string, string][] = [
        [TEST_SECRETS.fails, "invalid-input-response"],
        [TEST_SECRETS.spent, "timeout-or-duplicate"],
        ["0x4AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "invalid-input-secret"],
      ];
      for (const [secret, code] of expectations) {
        const res = await post({ secret, response: DUMMY_TOKEN });
        expect(await res.json()).toEqual({ success: false, "error-codes": [code], messages: [] });
      }
    }
    expect(await (await form({ response: DUMMY_TOKEN })).json()).toMatchObject({
      "error-codes": ["missing-input-secret"],
    });
    expect(await (await json({ secret: TEST_SECRETS.passes })).json()).toMatchObject({
      "error-codes": ["missing-input-response"],
    });
  });

  it("records what it was asked, and serves the client script stand-in", async () => {
    await fetch(`${fake.url}/__reset`, { method: "POST" });
    await form({ secret: TEST_SECRETS.passes, response: "tok", remoteip: "198.51.100.1" });
    const seen = (await (await fetch(`${fake.url}/__requests`)).json()) as { requests: unknown[] };
    expect(seen.requests).toEqual([
      {
        secret: TEST_SECRETS.passes,
        response: "tok",
        remoteip: "198.51.100.1",
        contentType: "application/x-www-form-urlencoded;charset=UTF-8",
      },
    ]);
    const script = await fetch(fake.scriptUrl);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect(await script.text()).toContain("window.turnstile");
  });
});
