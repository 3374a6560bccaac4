import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ibanValid,
  luhnValid,
  patternProblem,
  patternWork,
  redact,
  redactorOf,
  redactReply,
} from "../../../src/privacy/redact";
import { admin, createTenant, envelope, query, sql } from "../helpers";
import { after, before, card, email, iban, ordinary, phone } from "./pii";

const RUNS = { numRuns: 300 };

describe("redact: built-in kinds", () => {
  it("leaves no email address", () => {
    fc.assert(
      fc.property(before, email, after, (b, e, a) => {
        const out = redact(`${b}${e}${a}`);
        expect(out).toContain("[email]");
        expect(out).not.toContain("@");
      }),
      RUNS,
    );
  });

  it("leaves no digit of a phone number, international or national", () => {
    fc.assert(
      fc.property(before, phone, after, (b, p, a) => {
        const out = redact(`${b}${p}${a}`);
        expect(out).toMatch(/\[(phone|card)\]/);
        expect(out).not.toMatch(/\d/);
      }),
      RUNS,
    );
  });

  it("leaves no digit of a Luhn-valid card number, plain or grouped", () => {
    fc.assert(
      fc.property(before, card, after, (b, c, a) => {
        const out = redact(`${b}${c}${a}`);
        expect(out).toContain("[card]");
        expect(out).not.toMatch(/\d/);
      }),
      RUNS,
    );
  });

  it("leaves no IBAN with valid check digits, compact or in fours", () => {
    fc.assert(
      fc.property(before, iban, after, (b, i, a) => {
        expect(ibanValid(i)).toBe(true);
        const out = redact(`${b}${i}${a}`);
        expect(out).toContain("[iban]");
        expect(out).not.toMatch(/\d/);
      }),
      RUNS,
    );
  });

  it("finds every kind when they share one message", () => {
    fc.assert(
      fc.property(email, phone, card, iban, (e, p, c, i) => {
        const out = redact(`Me: ${e}, tel ${p}; pay with ${c} or to ${i}.`);
        expect(out).not.toMatch(/[\d@]/);
      }),
      RUNS,
    );
  });

  it("keeps dates, times, amounts, order numbers, versions and addresses as written", () => {
    fc.assert(
      fc.property(ordinary, (text) => {
        expect(redact(`See ${text} please`)).toBe(`See ${text} please`);
      }),
      { numRuns: 1000 },
    );
  });

  it("keeps card-shaped numbers that fail Luhn, and IBAN-shaped text that fails mod 97", () => {
    expect(luhnValid("4111111111111111")).toBe(true);
    expect(redact("ref 4111 1111 1111 1112")).toBe("ref 4111 1111 1111 1112");
    expect(redact("GB82WEST12345698765433")).toBe("GB82WEST12345698765433");
    expect(redact("GB82 WEST 1234 5698 7654 32")).toBe("[iban]");
  });

  it("answers known shapes exactly", () => {
    expect(redact("Write to jane.doe+shop@mail.example.co.uk today.")).toBe("Write to [email] today.");
    expect(redact("Call +44 20 7946 0958 or (555) 123-4567.")).toBe("Call [phone] or [phone].");
    expect(redact("Card 4242-4242-4242-4242, exp 12/27")).toBe("Card [card], exp 12/27");
    expect(redact("Order 123456789 shipped on 2024-05-01 at 10:30")).toBe(
      "Order 123456789 shipped on 2024-05-01 at 10:30",
    );
  });
});

describe("redact: tenant patterns", () => {
  it("applies a tenant's patterns after the built-in kinds", () => {
    const r = redactorOf({
      redactPatterns: ["\\bACME-\\d{6}\\b", "(?:member|client) no\\.? \\w{4,8}"],
      redactBeforeModel: false,
    });
    expect(redact("ticket ACME-123456, member no. X9Y8Z7 at a@b.io", r)).toBe(
      "ticket [redacted], [redacted] at [email]",
    );
  });

  it("refuses patterns that could backtrack catastrophically, match nothing or do not compile", () => {
    expect(patternProblem("(a+)+$")).toMatch(/nested quantifiers/);
    expect(patternProblem("(\\w*x)*y")).toMatch(/nested quantifiers/);
    expect(patternProblem("(a|ab){2,}c")).toMatch(/nested quantifiers/);
    expect(patternProblem("((ab)?c)+")).toMatch(/nested quantifiers/);
    expect(patternProblem("(a)\\1")).toMatch(/backreferences/);
    expect(patternProblem("a*")).toMatch(/empty string/);
    expect(patternProblem("(x")).toMatch(/does not compile/);
    expect(patternProblem("x".repeat(201))).toMatch(/longer than 200/);
    expect(patternProblem("[(+*]{1,9}x")).toBeUndefined();
    expect(patternProblem("\\(\\d{1,9}\\){1,2}x")).toBeUndefined();
    expect(patternProblem("(?:ab){1,20}c")).toBeUndefined();
    // The braces of \p{...} and \u{...} are the escape's, not a quantifier inside the group.
    expect(patternProblem("(\\p{L}){1,3}x")).toBeUndefined();
    expect(patternProblem("(?:\\p{Lu}x|\\u{1F600}){1,3}y")).toMatch(/nested quantifiers/);
    expect(patternProblem("(?:\\P{L}\\u{1F600}x){1,3}y")).toBeUndefined();
    expect(patternProblem("(\\p{L}{2}){1,3}x")).toMatch(/nested quantifiers/);
  });

  it("refuses patterns whose work at one position of the text is unbounded or large", () => {
    // Polynomial, not exponential, but of any degree: `\w*\w*!` took 17 s on 4,000 characters.
    for (const p of ["\\w*\\w*!", "\\d+x", "[A-Z]+-\\d+", "a{2,}b", "x\\s*y"])
      expect(patternProblem(p), p).toMatch(/unbounded repeats/);
    expect(patternProblem("\\w{1,64}@\\w{1,64}")).toMatch(/4096; at most 128/);
    expect(patternProblem("a?b?c?d?e?f?g?h?z")).toMatch(/256; at most 128/);
    // What the measure counts: ranges multiply along the pattern, alternatives add up.
    expect(patternWork("\\bACME-\\d{6}\\b")).toBe(1);
    expect(patternWork("(?:member|client) no\\.? \\w{4,8}")).toBe(20);
    expect(patternWork("[A-Z]{2,4}-\\d{4,8}")).toBe(15);
    expect(patternWork("x|y|z")).toBe(3);
    // Braces that belong to an escape or a class are not repeats.
    expect(patternWork("\\p{L}{2}\\d{3}[{]")).toBe(1);
    expect(patternWork("(?<id>X\\d{4})(?<!\\d)(?=[a\\]]{1,3})")).toBe(3);
    expect(patternProblem("\\bCUST-\\d{5}\\b")).toBeUndefined();
  });

  it("measures any pattern that compiles, and accepts only what it measures within the bound", () => {
    const unit = fc.constantFrom(..."ab.\\dw{}()[]|?*+^$,0123456789<>=!:-");
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), (source) => {
        try {
          new RegExp(source, "u");
        } catch {
          return;
        }
        const work = patternWork(source);
        expect(work === "unbounded" || (Number.isFinite(work) && work >= 1), source).toBe(true);
        if (patternProblem(source) === undefined) expect(work).toBeLessThanOrEqual(128);
      }),
      { numRuns: 3_000 },
    );
  });

  it("refuses a tenant's patterns whose work together is over the bound, and changes nothing", async () => {
    const t = await createTenant({ redact_patterns: ["\\bCUST-\\d{5}\\b"] });
    const heavy = Array.from({ length: 5 }, (_, i) => `${i}\\w{1,128}!`);
    const res = await admin("PATCH", `/tenants/${t.tenant_id}`, { redact_patterns: heavy });
    expect(res.status).toBe(400);
    expect((await envelope(res)).message).toMatch(/640 ways to match at one position; at most 512/);
    const refused = await admin("PATCH", `/tenants/${t.tenant_id}`, { redact_patterns: ["\\d+x"] });
    expect((await envelope(refused)).message).toMatch(/unbounded repeats/);
    const [row] = await query<{ redact_patterns: string[] }>(
      sql`select redact_patterns from tenants where id = ${t.tenant_id}`,
    );
    expect(row?.redact_patterns).toEqual(["\\bCUST-\\d{5}\\b"]);
  });

  it("keeps applying a pattern stored before the work bound, which a write now refuses", () => {
    const r = redactorOf({ redactPatterns: ["ACME-\\d+"], redactBeforeModel: false });
    expect(patternProblem("ACME-\\d+")).toMatch(/unbounded/);
    expect(redact("order ACME-12345678", r)).toBe("order [redacted]");
  });

  it("lists a tenant's stored patterns that a write would now refuse, on every read", async () => {
    const t = await createTenant({ redact_patterns: ["\\bCUST-\\d{5}\\b"] });
    const read = async () =>
      (
        (await (await admin("GET", `/tenants/${t.tenant_id}`)).json()) as {
          redact_pattern_problems: { pattern: string | null; problem: string }[];
        }
      ).redact_pattern_problems;
    expect(await read()).toEqual([]);
    // Saved before the bound: written behind the API's back, as the rows of that time are.
    const legacy = ["ACME-\\d+", ...Array.from({ length: 5 }, (_, i) => `${i}\\w{1,128}!`)];
    await query(
      sql`update tenants set redact_patterns = ${JSON.stringify(legacy)}::jsonb where id = ${t.tenant_id}`,
    );
    expect(await read()).toEqual([
      { pattern: "ACME-\\d+", problem: expect.stringMatching(/unbounded repeats/) },
      { pattern: null, problem: expect.stringMatching(/640 ways to match at one position; at most 512/) },
    ]);
    // A write of another setting keeps them, and answers them too.
    const patched = await admin("PATCH", `/tenants/${t.tenant_id}`, { custom_greeting: "hi" });
    expect(patched.status).toBe(200);
    expect(
      ((await patched.json()) as { redact_pattern_problems: unknown[] }).redact_pattern_problems,
    ).toHaveLength(2);
  });

  // Not linear: each start position in the run retries it (docs/privacy.md, "Tenant patterns").
  it("runs these accepted patterns on 40,000 hostile characters in under a second", () => {
    const r = redactorOf({ redactPatterns: ["(?:ab)+c", "\\d+x"], redactBeforeModel: false });
    const t0 = performance.now();
    redact(`${"ab".repeat(20_000)}${"1".repeat(20_000)}`, r);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });
});

describe("redactReply", () => {
  it("redacts the groups of the visitor's PII an answer quotes, even cut short", () => {
    const visitor = "my iban is GB82 WEST 1234 5698 7654 32 and card 4111 1111 1111 1111";
    const reply = 'You said: "my iban is GB82 WEST 1234 ..." and 4111 1111 ...; order 2026 ships';
    const out = redactReply(reply, visitor);
    expect(out).not.toMatch(/GB82|1234|4111|1111/);
    // Words that were not part of the visitor's PII stay.
    expect(out).toContain("order 2026 ships");
    expect(redactReply("nothing to see 1234", "no pii here")).toBe("nothing to see 1234");
  });
});
