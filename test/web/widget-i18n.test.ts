import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../web/shared/api-error";
import { explain } from "../../web/widget/chat";
import { EN, fill, LOCALES, pickLocale, type Strings, waitFor } from "../../web/widget/i18n";
import { TRANSLATIONS } from "../../web/widget/locales";
import { accentColors, contrast, luminance, readableOn } from "../../web/widget/theme";

const placeholders = (s: string) => (s.match(/\{\d\}/g) ?? []).sort().join();

describe("the widget's languages", () => {
  it("translate every text, keeping its placeholders and list lengths", () => {
    expect(Object.keys(TRANSLATIONS).sort()).toEqual(LOCALES.filter((l) => l !== "en").sort());
    for (const [locale, t] of Object.entries(TRANSLATIONS)) {
      expect(Object.keys(t).sort(), locale).toEqual(Object.keys(EN).sort());
      for (const k of Object.keys(EN) as (keyof Strings)[]) {
        expect(t[k].trim(), `${locale}.${k}`).not.toBe("");
        expect(placeholders(t[k]), `${locale}.${k}`).toBe(placeholders(EN[k]));
      }
      expect(t.ratings.split("|"), locale).toHaveLength(5);
      expect(t.units.split("|"), locale).toHaveLength(4);
    }
  });

  it("are chosen by the tenant, else the browser's first known language, else English", () => {
    expect(pickLocale("ja", ["de-DE", "en"])).toBe("ja");
    expect(pickLocale(null, ["pt-BR", "fr-CA", "de"])).toBe("fr");
    expect(pickLocale(undefined, ["ES"])).toBe("es");
    expect(pickLocale("xx", ["nl", "sv"])).toBe("en");
    expect(pickLocale(null, [])).toBe("en");
  });

  it("say refusals and waits in the visitor's language", () => {
    const de = TRANSLATIONS.de;
    const limited = new ApiError("slow", { status: 429, code: "RATE_LIMITED", retryAfterSeconds: 42 });
    expect(explain(limited, de)).toBe(
      "Sie senden Nachrichten schneller, als dieser Chat erlaubt. Sie können in 42 s wieder senden.",
    );
    // The countdown: the same message with the seconds left.
    expect(explain(limited, de, 7)).toContain("in 7 s wieder");
    const budget = new ApiError("x", { status: 429, code: "BUDGET_EXCEEDED", retryAfterSeconds: 3 * 86_400 });
    expect(explain(budget, TRANSLATIONS.ja)).toBe(
      "このアシスタントは現在、利用上限に達しています。3日後にもう一度お試しください。",
    );
    expect(explain(new ApiError("x", { status: 429, code: "BUDGET_EXCEEDED" }), TRANSLATIONS.fr)).toBe(
      "Cet assistant a atteint sa limite d’utilisation pour le moment. Veuillez réessayer plus tard.",
    );
    expect(waitFor(TRANSLATIONS.es, 5 * 60)).toBe("5 min");
    expect(fill(EN.ofFive, 4, "good")).toBe("4 of 5, good");
  });
});

describe("the tenant's accent colour", () => {
  it("gets black or white text, whichever reads, always at least WCAG AA's 4.5:1", () => {
    expect(readableOn("#2457d6")).toBe("#ffffff");
    expect(readableOn("#fde047")).toBe("#000000");
    expect(readableOn("#fff")).toBe("#000000");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffff }), (n) => {
        const hex = `#${n.toString(16).padStart(6, "0")}`;
        const fg = readableOn(hex);
        expect(contrast(luminance(hex), luminance(fg))).toBeGreaterThanOrEqual(4.5);
      }),
      { numRuns: 2_000 },
    );
  });

  it("is used only when it is a hex colour", () => {
    expect(accentColors("#0F766E")).toEqual({ a: "#0F766E", f: "#ffffff" });
    for (const bad of [null, undefined, "", "red", "#12345", "#123456;color:red", "url(x)"])
      expect(accentColors(bad), String(bad)).toBeUndefined();
  });
});
