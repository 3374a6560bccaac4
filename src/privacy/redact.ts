/**
 * PII redaction (docs/privacy.md): email addresses, phone numbers, payment card numbers (Luhn),
 * IBANs (mod 97) and a tenant's own patterns are replaced by a `[kind]` placeholder before text is
 * stored (transcripts, analytics text, notification bodies) and, when the tenant asks, before it
 * reaches the model provider. Built-in detection is one pass of one combined regular expression;
 * candidates that fail their checksum stay as written. Node imports this module (the analytics
 * consumer is shared with local tools), so it reaches no Workers API.
 */

/** Placeholders written in place of what was found. */
export const PLACEHOLDERS = {
  email: "[email]",
  phone: "[phone]",
  card: "[card]",
  iban: "[iban]",
  custom: "[redacted]",
} as const;

/**
 * Bounds of a tenant's own patterns (docs/privacy.md): how many, how long each, and their work
 * together (the sum of each one's `patternWork`, each at most MAX_PATTERN_WORK). At the bound, an
 * 8,000-character message of one repeated character takes each pattern 3-11 ms to scan.
 */
export const CUSTOM_PATTERN_LIMITS = { count: 20, length: 200, work: 512 } as const;

// One alternation, one scan. Groups: 1 email, 2 IBAN, 3 digit run (card or phone). Lookbehinds keep
// a match from starting inside a longer word or number.
// An email address: RFC 5322's atoms before the @ (quoted local parts are not looked for), a dotted domain.
const ATEXT = "A-Za-z0-9.!#$%&'*+/=?^_`{|}~-";
const EMAIL = String.raw`[${ATEXT}]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,16}[A-Za-z]{2,63}`;
// An IBAN: country, check digits, 11-30 alphanumerics, printed in groups of four or not at all.
const IBAN = String.raw`[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?`;
// A run of digits a card or a phone number is printed as: an optional +, groups separated by one
// space, dash, dot or slash, optional parentheses around an area code.
const DIGITS = String.raw`(?:\+|\(\d{1,5}\) ?)?\d(?:[ \-./]?\(?\d\)?){6,22}`;
const SCAN = new RegExp(
  String.raw`(?<![${ATEXT}])(${EMAIL})|(?<![A-Za-z0-9])(${IBAN})(?![A-Za-z0-9])|(?<![\w+.\-/])(${DIGITS})(?![\w]|[.\-/]\d)`,
  "g",
);

/** Luhn's check (payment cards): doubling every second digit from the right, the sum ends in 0. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** The IBAN check (ISO 13616): the account moved behind country and check digits, read base 36, mod 97 is 1. */
export function ibanValid(iban: string): boolean {
  const s = iban.replaceAll(" ", "");
  if (s.length < 15 || s.length > 34) return false;
  const moved = s.slice(4) + s.slice(0, 4);
  let rest = 0;
  for (const ch of moved) {
    const code = ch.charCodeAt(0);
    const v = code <= 57 ? code - 48 : code - 55;
    rest = v >= 10 ? (rest * 100 + v) % 97 : (rest * 10 + v) % 97;
  }
  return rest === 1;
}

// A date (2024-05-01, 01/05/2024, 1.5.2024) and a time are runs of digits too; they are not PII.
const DATE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$/;
// A date followed by a time or more ("2026-12-05 17:32") starts with one.
const DATED = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}) /;
// Neither are an IPv4 address and an amount written with thousands separators (1.250.000, 1 250 000).
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const THOUSANDS = /^[1-9]\d{0,2}(?:([ .])\d{3})(?:\1\d{3})*$/;

/** What a run of digits is: a card (13-19 digits, Luhn), a phone number, or neither. */
function classifyDigits(run: string): "card" | "phone" | undefined {
  if (DATE.test(run) || DATED.test(run) || IPV4.test(run) || THOUSANDS.test(run)) return undefined;
  const digits = run.replace(/\D/g, "");
  if (digits.length >= 13 && digits.length <= 19 && !run.startsWith("+") && luhnValid(digits)) return "card";
  // An international number: + and 8-15 digits (E.164).
  if (run.startsWith("+")) return digits.length >= 8 && digits.length <= 15 ? "phone" : undefined;
  // A national number is printed with separators or a leading 0 / area code in parentheses; a bare
  // run of digits without either is an order number, an amount or an id, not a phone.
  if (digits.length < 7 || digits.length > 12) return undefined;
  const grouped = /[ \-./()]/.test(run);
  if (!grouped && !digits.startsWith("0")) return undefined;
  if (/^\d+\.\d+$/.test(run)) return undefined; // a decimal number
  // Dots mixed with other separators are decimals and networks ("0.67-1.13", "192.168/16"); more
  // than one slash is a list ("107/429/747"); a phone number is written with one kind.
  if (run.includes(".") && /[-/()]/.test(run)) return undefined;
  if (run.indexOf("/") !== run.lastIndexOf("/")) return undefined;
  return "phone";
}

/** A tenant's compiled patterns: redaction applies the built-in kinds, then these. */
export interface Redactor {
  readonly custom: readonly RegExp[];
  /** Whether text goes to the model provider redacted too. */
  readonly beforeModel: boolean;
}

/** The built-in redactor: no tenant patterns, the model sees text as written. */
export const BUILT_IN: Redactor = { custom: [], beforeModel: false };

/** Replaces every email, phone, card, IBAN and tenant pattern in `text` with its placeholder. */
export function redact(text: string, redactor: Redactor = BUILT_IN): string {
  // The cheap common case: nothing that could start PII (no @, no digit) and no tenant pattern.
  let out = /[@\d]/.test(text) ? text.replace(SCAN, builtIn) : text;
  for (const re of redactor.custom) out = out.replace(re, PLACEHOLDERS.custom);
  return out;
}

function builtIn(match: string, email?: string, iban?: string, digits?: string): string {
  if (email) return PLACEHOLDERS.email;
  if (iban) return ibanValid(iban) ? PLACEHOLDERS.iban : match;
  if (digits) {
    // A closing parenthesis with no opening one belongs to the text around ("(call 555-1234)").
    const stray = !digits.includes("(") && digits.endsWith(")");
    const kind = classifyDigits(stray ? digits.slice(0, -1) : digits);
    return kind ? PLACEHOLDERS[kind] + (stray ? ")" : "") : match;
  }
  return match;
}

/** The PII `redact` would replace in `text`, as written there. */
function piiIn(text: string, redactor: Redactor): string[] {
  const found: string[] = [];
  if (/[@\d]/.test(text)) {
    for (const m of text.matchAll(
      new RegExp(SCAN.source, SCAN.flags.includes("g") ? SCAN.flags : `${SCAN.flags}g`),
    ))
      if (builtIn(m[0], m[1], m[2], m[3]) !== m[0]) found.push(m[0]);
  }
  for (const re of redactor.custom) {
    for (const m of text.matchAll(new RegExp(re.source, re.flags.includes("g") ? re.flags : `${re.flags}g`)))
      found.push(m[0]);
  }
  return found;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Redacts an answer, and the pieces of the visitor's own PII it quotes: a model echoing the first
 * groups of an IBAN or a card number leaves a fragment no longer valid on its own, which `redact`
 * alone would keep. Every group of three or more characters with a digit in it, of every PII the
 * visitor's message held, is redacted where the answer has it as a word.
 */
export function redactReply(reply: string, visitorText: string, redactor: Redactor = BUILT_IN): string {
  let out = redact(reply, redactor);
  const groups = new Set(
    piiIn(visitorText, redactor).flatMap((p) =>
      p.split(/[\s\-./()@]+/).filter((g) => g.length >= 3 && /\d/.test(g)),
    ),
  );
  for (const g of groups) {
    out = out.replace(
      new RegExp(`(?<![\\p{L}\\p{N}])${escapeRe(g)}(?![\\p{L}\\p{N}])`, "gu"),
      PLACEHOLDERS.custom,
    );
  }
  return out;
}

/** `redact` for nullable text. */
export function redactNullable(text: string | null, redactor: Redactor = BUILT_IN): string | null {
  return text === null ? null : redact(text, redactor);
}

/**
 * Why a tenant pattern is refused, or undefined when it is acceptable. Patterns are bounded in
 * length, must compile, must not match the empty string, and may not nest quantifiers (`(a+)+`,
 * `(\w*)*`, `(a|b+){2,}`): those are what makes a backtracking engine take exponential time. And
 * the work at each position of the visitor's text must be bounded (`patternWork`): no `*`, `+` or
 * `{n,}`, and at most MAX_PATTERN_WORK ways to try a match there. Without that bound a pattern is
 * polynomial in the text, with no bound on the degree: `\d+x` took 41 ms on an 8,000-character
 * message, `\w*\w*!` 17 s on 4,000 characters (docs/privacy.md).
 */
export function patternProblem(source: string): string | undefined {
  const problem = storedPatternProblem(source);
  if (problem) return problem;
  const work = patternWork(source);
  if (work === "unbounded")
    return "unbounded repeats (*, + or {n,}) are not allowed: give a bound, like {1,32}";
  if (work > MAX_PATTERN_WORK)
    return `too many ways to match at one position (${work > 1e9 ? "over 10^9" : work}; at most ${MAX_PATTERN_WORK}): narrow the {m,n} ranges, ? and alternatives`;
  return undefined;
}

/**
 * Ways a pattern may try to match at one position, at most: the product, along the pattern, of
 * each repeat's range (`{2,5}`: 4, `?`: 2) and of the sum over each alternation's branches.
 * Patterns that nest quantifiers are refused before this is asked.
 */
export const MAX_PATTERN_WORK = 128;

/** Why a tenant's patterns together are refused (their work summed over CUSTOM_PATTERN_LIMITS.work), or undefined. */
export function patternSetProblem(patterns: readonly string[]): string | undefined {
  const work = patterns.reduce((sum, p) => sum + (Number(patternWork(p)) || 0), 0);
  return work > CUSTOM_PATTERN_LIMITS.work
    ? `the patterns together have ${work} ways to match at one position; at most ${CUSTOM_PATTERN_LIMITS.work}`
    : undefined;
}

/**
 * What a write of the tenant's stored patterns would be refused for now: patterns saved before the
 * work bound are still applied (below), and reads list these so that someone rewrites them.
 * `pattern` is null for a problem of the patterns together.
 */
export function storedPatternsProblems(
  patterns: readonly string[],
): { pattern: string | null; problem: string }[] {
  const out: { pattern: string | null; problem: string }[] = [];
  for (const pattern of patterns) {
    const problem = patternProblem(pattern);
    if (problem) out.push({ pattern, problem });
  }
  const together = patternSetProblem(patterns);
  if (together) out.push({ pattern: null, problem: together });
  return out;
}

/**
 * The rules a pattern stored before the work bound (2026-12-07) must still meet to be applied:
 * the redactor keeps applying such a pattern, since skipping it would stop redacting what it
 * matches without a word to anyone; a write of the tenant's patterns must meet `patternProblem`.
 */
function storedPatternProblem(source: string): string | undefined {
  if (source.length === 0) return "empty pattern";
  if (source.length > CUSTOM_PATTERN_LIMITS.length)
    return `longer than ${CUSTOM_PATTERN_LIMITS.length} characters`;
  let re: RegExp;
  try {
    re = new RegExp(source, "gu");
  } catch (err) {
    return `does not compile: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (re.test("")) return "matches the empty string";
  if (/\\[1-9]|\\k</.test(source)) return "backreferences are not allowed";
  if (hasNestedQuantifier(source)) return "nested quantifiers (like (a+)+) are not allowed";
  return undefined;
}

/**
 * `MAX_PATTERN_WORK`'s measure of a pattern that compiles with the `u` flag: a recursive reading of
 * its alternations, groups, classes, escapes and repeats. "unbounded" for `*`, `+` and `{n,}`.
 */
export function patternWork(source: string): number | "unbounded" {
  let i = 0;
  const alternation = (): number | "unbounded" => {
    let sum = 0;
    for (;;) {
      const w = sequence();
      if (w === "unbounded") return w;
      sum += w;
      if (source[i] !== "|") return sum;
      i++;
    }
  };
  const sequence = (): number | "unbounded" => {
    let product = 1;
    while (i < source.length && source[i] !== "|" && source[i] !== ")") {
      const atom = atomWork();
      if (atom === "unbounded") return atom;
      const range = repeatRange();
      if (range === "unbounded") return range;
      // A repeated atom with choices inside is a nested quantifier, refused before; as a bound, count
      // its choices at each of `range` repeats (an atom without choices counts 1 at each).
      product *= atom ** range * range;
    }
    return product;
  };
  const atomWork = (): number | "unbounded" => {
    const ch = source[i];
    if (ch === "(") {
      i++;
      if (source[i] === "?") {
        // (?: (?= (?! (?<= (?<! (?<name>
        i++;
        if (source[i] === "<" && source[i + 1] !== "=" && source[i + 1] !== "!") {
          while (i < source.length && source[i] !== ">") i++;
          i++;
        } else i += source[i] === "<" ? 2 : 1;
      }
      const inner = alternation();
      i++; // ")"
      return inner;
    }
    if (ch === "[") {
      i++;
      while (i < source.length && source[i] !== "]") i += source[i] === "\\" ? 2 : 1;
      i++;
      return 1;
    }
    if (ch === "\\") {
      i = afterEscape(source, i);
      return 1;
    }
    i++;
    return 1;
  };
  const repeatRange = (): number | "unbounded" => {
    const ch = source[i];
    let range = 1;
    if (ch === "*" || ch === "+") return "unbounded";
    if (ch === "?") {
      i++;
      range = 2;
    } else if (ch === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i));
      if (!m) return 1;
      i += m[0].length;
      if (m[2] === undefined) range = 1;
      else if (m[3] === "") return "unbounded";
      else range = Math.max(Number(m[3]) - Number(m[1]) + 1, 1);
    } else return 1;
    if (source[i] === "?") i++; // lazy
    return range;
  };
  return alternation();
}

/**
 * Where the escape at `i` (its backslash) ends. `\p{...}`, `\P{...}` and `\u{...}` end after their
 * braces, which belong to the escape, not a repeat; any other escape after its next character.
 */
function afterEscape(source: string, i: number): number {
  const kind = source[i + 1];
  let end = i + 2;
  if ((kind === "p" || kind === "P" || kind === "u") && source[end] === "{") {
    while (end < source.length && source[end] !== "}") end++;
    end++;
  }
  return end;
}

/**
 * Whether a repeated group contains a quantifier or an alternation: `(a+)+`, `(\w*)*`, `(a|ab)*`,
 * the shapes that make a backtracking engine take exponential time. `(a+)?` is allowed (it cannot repeat).
 */
function hasNestedQuantifier(source: string): boolean {
  // Per open group: whether a quantifier or `|` appeared inside it.
  const stack: boolean[] = [];
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === "\\") {
      i = afterEscape(source, i) - 1;
      continue;
    }
    if (inClass) {
      if (ch === "]") inClass = false;
      continue;
    }
    if (ch === "[") inClass = true;
    else if (ch === "(") stack.push(false);
    else if (ch === ")") {
      const inner = stack.pop() ?? false;
      const next = source[i + 1];
      const repeats = next === "*" || next === "+" || next === "{";
      if (inner && repeats) return true;
      if ((inner || repeats || next === "?") && stack.length > 0) stack[stack.length - 1] = true;
    } else if ((ch === "*" || ch === "+" || ch === "{" || ch === "|") && stack.length > 0)
      stack[stack.length - 1] = true;
  }
  return false;
}

// Compiled tenant redactors, by the tenant's patterns: compiling is per pattern set, not per message.
// Bounded: the oldest entry goes past 1,000 distinct pattern sets.
const compiled = new Map<string, readonly RegExp[]>();

/** The redactor of a tenant's settings; patterns that would be refused on write are skipped. */
export function redactorOf(settings: {
  redactPatterns: readonly string[];
  redactBeforeModel: boolean;
}): Redactor {
  if (settings.redactPatterns.length === 0)
    return settings.redactBeforeModel ? { custom: [], beforeModel: true } : BUILT_IN;
  const key = JSON.stringify(settings.redactPatterns);
  let custom = compiled.get(key);
  if (!custom) {
    custom = settings.redactPatterns
      .slice(0, CUSTOM_PATTERN_LIMITS.count)
      .filter((p) => storedPatternProblem(p) === undefined)
      .map((p) => new RegExp(p, "gu"));
    if (compiled.size >= 1_000) compiled.delete(compiled.keys().next().value ?? "");
    compiled.set(key, custom);
  }
  return { custom, beforeModel: settings.redactBeforeModel };
}
