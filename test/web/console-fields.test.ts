import { describe, expect, it } from "vitest";
import { storedPatternsProblems } from "../../src/privacy/redact";
import { TenantPatch } from "../../src/tenants/schemas";
import { storedPatternsNote } from "../../web/console/views/config";
import { FIELDS } from "../../web/console/views/fields";

const field = (name: string) => {
  const f = FIELDS.find((x) => x.name === name);
  if (!f) throw new Error(`no field ${name}`);
  return f;
};

describe("the console's configuration fields", () => {
  it("cover every field a tenant PATCH takes, once", () => {
    expect(FIELDS.map((f) => f.name).sort()).toEqual(Object.keys(TenantPatch.shape).sort());
  });

  it("parse what the API takes and name what is wrong", () => {
    expect(field("allowed_origins").parse("https://shop.example\n\n http://localhost:3000 ")).toEqual({
      ok: true,
      value: ["https://shop.example", "http://localhost:3000"],
    });
    expect(field("allowed_origins").parse("https://shop.example/")).toMatchObject({ ok: false });
    expect(field("max_tokens_per_response").parse("1.5")).toEqual({ ok: false, message: "a whole number" });
    expect(field("max_tokens_per_response").parse("0")).toEqual({
      ok: false,
      message: "between 1 and 200000",
    });
    expect(field("daily_cost_budget_usd").parse("")).toEqual({ ok: true, value: null });
    expect(field("fallback_model").parse("")).toEqual({ ok: true, value: null });
    expect(field("allowed_models").parse("gpt-4o\n\n @cf/meta/llama-3.1-8b-instruct ")).toEqual({
      ok: true,
      value: ["gpt-4o", "@cf/meta/llama-3.1-8b-instruct"],
    });
    expect(field("allowed_models").parse("gpt 4o")).toEqual({
      ok: false,
      message: "gpt 4o: not a model name",
    });
    expect(field("name").parse("  ")).toEqual({ ok: false, message: "required" });
    // The Turnstile secret is write-only: empty keeps it (nothing sent), "off" removes it.
    const secret = field("turnstile_secret_key");
    expect(secret.show(undefined)).toBe("");
    expect(secret.parse("")).toEqual({ ok: true, value: undefined });
    expect(secret.parse("off")).toEqual({ ok: true, value: null });
    expect(secret.parse("1x0000000000000000000000000000000AA")).toEqual({
      ok: true,
      value: "1x0000000000000000000000000000000AA",
    });
    expect(secret.parse("hunter2")).toEqual({ ok: false, message: "not a Turnstile secret key" });
    expect(field("turnstile_site_key").parse("")).toEqual({ ok: true, value: null });
    expect(field("timezone").parse("Mars/Olympus")).toEqual({ ok: false, message: "not an IANA time zone" });
    expect(field("pricing_overrides").parse('{"mock":{"input":1,"output":2}}')).toEqual({
      ok: true,
      value: { mock: { input: 1, output: 2 } },
    });
    expect(field("pricing_overrides").parse("[1]")).toEqual({ ok: false, message: "must be a JSON object" });
    expect(field("active").parse(false)).toEqual({ ok: true, value: false });
  });

  it("show API values back in the form", () => {
    expect(field("allowed_origins").show(["a", "b"])).toBe("a\nb");
    expect(field("daily_cost_budget_usd").show(null)).toBe("");
    expect(field("pricing_overrides").show({})).toBe("{}");
  });

  it("say which stored redaction patterns a save of the field would now refuse", () => {
    expect(storedPatternsNote(storedPatternsProblems(["\\bCUST-\\d{5}\\b"]))).toBeUndefined();
    const note = storedPatternsNote(storedPatternsProblems(["ACME-\\d+", "\\bCUST-\\d{5}\\b"]));
    expect(note).toMatch(/^Saved before the current rules and still applied/);
    expect(note).toContain("ACME-\\d+: unbounded repeats");
    expect(note).not.toContain("CUST");
  });
});
