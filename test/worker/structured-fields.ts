/**
 * A strict parser for the part of HTTP Structured Fields (RFC 9651) the RateLimit fields use: a
 * List of Items whose bare items and parameter values are Integers, Strings, Tokens or Booleans.
 * Anything else (Decimals, Byte Sequences, Dates, Inner Lists, stray characters) throws, so a test
 * fails on a field a real SF parser would reject or read differently.
 */

export type BareItem = number | string | boolean | { token: string };
export interface Item {
  value: BareItem;
  params: Map<string, BareItem>;
}

class Input {
  i = 0;
  constructor(readonly s: string) {}
  ch(): string {
    return this.s[this.i] ?? "";
  }
  get done(): boolean {
    return this.i >= this.s.length;
  }
  fail(what: string): never {
    throw new Error(`structured field: ${what} at ${this.i} in ${JSON.stringify(this.s)}`);
  }
  skip(chars: string): void {
    while (!this.done && chars.includes(this.ch())) this.i++;
  }
}

const DIGIT = /[0-9]/;
const KEY_START = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_\-.*]/;
const TOKEN_START = /[A-Za-z*]/;
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/;

function bareItem(p: Input): BareItem {
  const c = p.ch();
  if (c === "-" || DIGIT.test(c)) return integer(p);
  if (c === '"') return string(p);
  if (c === "?") {
    p.i++;
    const b = p.ch();
    if (b !== "0" && b !== "1") p.fail("bad boolean");
    p.i++;
    return b === "1";
  }
  if (TOKEN_START.test(c)) {
    const start = p.i;
    while (!p.done && TOKEN_CHAR.test(p.ch())) p.i++;
    return { token: p.s.slice(start, p.i) };
  }
  return p.fail("unsupported bare item");
}

function integer(p: Input): number {
  const start = p.i;
  if (p.ch() === "-") p.i++;
  const digits = p.i;
  while (!p.done && DIGIT.test(p.ch())) p.i++;
  const n = p.i - digits;
  if (n < 1 || n > 15) p.fail("bad integer");
  if (p.ch() === ".") p.fail("decimals are outside this parser's subset");
  return Number(p.s.slice(start, p.i));
}

function string(p: Input): string {
  p.i++;
  let out = "";
  for (;;) {
    if (p.done) p.fail("unterminated string");
    const c = p.ch();
    p.i++;
    if (c === '"') return out;
    if (c === "\\") {
      const e = p.ch();
      if (e !== '"' && e !== "\\") p.fail("bad escape");
      out += e;
      p.i++;
    } else {
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) p.fail("non-printable character in string");
      out += c;
    }
  }
}

function params(p: Input): Map<string, BareItem> {
  const out = new Map<string, BareItem>();
  while (p.ch() === ";") {
    p.i++;
    p.skip(" ");
    if (!KEY_START.test(p.ch())) p.fail("bad parameter key");
    const start = p.i;
    while (!p.done && KEY_CHAR.test(p.ch())) p.i++;
    const key = p.s.slice(start, p.i);
    let value: BareItem = true;
    if (p.ch() === "=") {
      p.i++;
      value = bareItem(p);
    }
    out.set(key, value);
  }
  return out;
}

/** Parses a List field value; an absent field is an empty List. */
export function parseList(value: string | null): Item[] {
  const p = new Input((value ?? "").replace(/^ +| +$/g, ""));
  const items: Item[] = [];
  while (!p.done) {
    if (p.ch() === "(") p.fail("inner lists are outside this parser's subset");
    const v = bareItem(p);
    items.push({ value: v, params: params(p) });
    p.skip(" \t");
    if (p.done) break;
    if (p.ch() !== ",") p.fail("expected a comma");
    p.i++;
    p.skip(" \t");
    if (p.done) p.fail("trailing comma");
  }
  return items;
}

/**
 * A List of String-named items read as `{ name: { param: integer } }`: what RateLimit-Policy and
 * RateLimit carry. Throws on a non-String name, a repeated name or a non-Integer parameter.
 */
export function integerParamsByName(value: string | null): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const item of parseList(value)) {
    if (typeof item.value !== "string")
      throw new Error(`item is not a String: ${JSON.stringify(item.value)}`);
    if (item.value in out) throw new Error(`repeated item ${item.value}`);
    const ps: Record<string, number> = {};
    for (const [k, v] of item.params) {
      if (typeof v !== "number") throw new Error(`parameter ${k} of ${item.value} is not an Integer`);
      ps[k] = v;
    }
    out[item.value] = ps;
  }
  return out;
}
