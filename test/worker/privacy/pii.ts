/** fast-check generators of PII as people write it, and of ordinary text that is not PII. */
import fc from "fast-check";

const digit = fc.integer({ min: 0, max: 9 }).map(String);
const digits = (min: number, max: number) =>
  fc.array(digit, { minLength: min, maxLength: max }).map((d) => d.join(""));

/** Splits `s` into groups of the given sizes (the last takes the rest), joined by `sep`. */
function grouped(s: string, sizes: readonly number[], sep: string): string {
  const out: string[] = [];
  let i = 0;
  for (const n of sizes) {
    if (i >= s.length) break;
    out.push(s.slice(i, i + n));
    i += n;
  }
  if (i < s.length) out.push(s.slice(i));
  return out.join(sep);
}

/** The Luhn check digit that completes `body`. */
function luhnDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

/** Email addresses in RFC 5322's dot-atom form (fast-check's own generator). */
export const email = fc.emailAddress();

/** Phone numbers: international (+cc, 8-15 digits) and national (leading 0, US (555) shapes). */
export const phone = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: 1, max: 999 }),
      digits(7, 11),
      fc.constantFrom(" ", "-", ".", ""),
      fc.constantFrom([2, 3, 4], [3, 3, 4], [4, 4], [1, 2, 2, 2, 2], [3, 4]),
    )
    .map(([cc, rest, sep, sizes]) => `+${cc}${sep === "" ? "" : " "}${grouped(rest, sizes, sep)}`),
  fc
    .tuple(
      digits(2, 4),
      digits(5, 7),
      fc.constantFrom(" ", "-", "/", ""),
      fc.constantFrom([3, 4], [4, 4], [2, 2, 2, 2]),
    )
    // A slash parts the area code only ("030/123 4567"); several slashes read as a list of numbers.
    .map(([area, rest, sep, sizes]) => `0${area}${sep}${grouped(rest, sizes, sep === "/" ? " " : sep)}`),
  fc
    .tuple(digits(3, 3), digits(3, 3), digits(4, 4), fc.constantFrom(" ", "-", "."), fc.boolean())
    .map(([a, b, c, sep, paren]) => (paren ? `(${a}) ${b}-${c}` : `${a}${sep}${b}${sep}${c}`)),
  fc.tuple(digits(3, 3), digits(3, 3), digits(4, 4)).map(([a, b, c]) => `+1 (${a}) ${b}-${c}`),
);

/** Payment card numbers: 13-19 digits with a valid Luhn digit, printed plain or in groups. */
export const card = fc
  .tuple(
    fc.integer({ min: 3, max: 6 }),
    fc.integer({ min: 13, max: 19 }),
    digits(18, 18),
    fc.constantFrom(" ", "-", ""),
  )
  .map(([first, length, pool, sep]) => {
    const body = `${first}${pool}`.slice(0, length - 1);
    const number = body + luhnDigit(body);
    return sep === "" ? number : grouped(number, length === 15 ? [4, 6, 5] : [4, 4, 4, 4], sep);
  });

const upper = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZ");
const alnum = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");

/** IBANs: a country, check digits made by mod 97, an 11-30 character account; compact or in fours. */
export const iban = fc
  .tuple(
    fc.array(upper, { minLength: 2, maxLength: 2 }),
    fc.array(alnum, { minLength: 11, maxLength: 30 }),
    fc.boolean(),
  )
  .map(([country, account, spaced]) => {
    const cc = country.join("");
    const bban = account.join("");
    const numeric = [...`${bban}${cc}00`].map((ch) => Number.parseInt(ch, 36).toString()).join("");
    let rest = 0;
    for (const ch of numeric) rest = (rest * 10 + Number(ch)) % 97;
    const check = String(98 - rest).padStart(2, "0");
    const whole = `${cc}${check}${bban}`;
    return spaced ? grouped(whole, Array(9).fill(4), " ") : whole;
  });

/** Words around PII: none holds a digit or an @, so any digit or @ left after redaction is a leak. */
export const before = fc.constantFrom("", "call me at ", "My details: ", "(", "mail ", "Hi,\n", "number: ");
export const after = fc.constantFrom("", ".", ",", ")", " thanks", "!\n", " or later");

/** Text that holds numbers but no PII: dates, times, amounts, order numbers, versions, addresses. */
export const ordinary = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: 1990, max: 2099 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 28 }),
    )
    .chain(([y, m, d]) =>
      fc.constantFrom(
        `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`,
        `${d}/${m}/${y}`,
        `${d}.${m}.${y}`,
        `${m}/${d}/${String(y).slice(2)}`,
      ),
    ),
  fc
    .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
    .map(([h, m]) => `${h}:${String(m).padStart(2, "0")}`),
  fc.integer({ min: 10_000, max: 999_999_999_999 }).map((n) => `order ${n}`),
  fc
    .tuple(fc.integer({ min: 1_000, max: 999_999_999 }), fc.constantFrom(",", ".", " "))
    .map(([n, sep]) => `${String(n).replace(/\B(?=(\d{3})+$)/g, sep)} EUR`),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => `server ${p.join(".")}`),
  fc.tuple(fc.nat(30), fc.nat(30), fc.nat(300)).map((v) => `version ${v.join(".")}`),
  fc.double({ min: 0, max: 1e6, noNaN: true }).map((x) => `costs ${x.toFixed(2)}`),
);
