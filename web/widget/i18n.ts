/**
 * Every text the widget shows or says. The tenant's `widget.locale` wins; otherwise the browser's
 * first language the widget knows; otherwise English. English is in the bundle; the others
 * (locales.ts) are built into `widget/<locale>.json` next to widget.js and fetched only by a visitor
 * who needs one, so every language added costs the bundle nothing. `{0}`, `{1}` are filled in by
 * `fill`; lists are "|"-separated.
 */

export const LOCALES = ["en", "de", "fr", "es", "ja"] as const;
export type Locale = (typeof LOCALES)[number];

const en = {
  open: "Open chat",
  close: "Close chat",
  chat: "Chat",
  chatWith: "Chat with {0}",
  end: "End chat",
  placeholder: "Type your message…",
  message: "Message",
  send: "Send",
  answered: "Did we answer your question?",
  yes: "Yes",
  no: "No",
  back: "Back to the chat",
  rateLabel: "Rate this chat",
  rateAsk: "How would you rate this chat? (1 = very poor, 5 = excellent)",
  ratings: "very poor|poor|okay|good|excellent",
  ofFive: "{0} of 5, {1}",
  thanks: "Thanks for your feedback! This chat has ended.",
  restart: "Start a new chat",
  offline: "Connection lost. Reconnecting…",
  you: "You said:",
  bot: "Assistant said:",
  answering: "The assistant is answering…",
  /** The status line while a tool runs; the tool's own label follows it. */
  checking: "Checking…",
  /** The name of the list of sources an answer cites. */
  sources: "Sources",
  notPerson: "We couldn't confirm that you're a person, so the chat can't start. Please try again.",
  unreachable: "We can't reach the chat right now. Check your connection and try again.",
  generic: "Something went wrong. Please try again.",
  budget: "This assistant has reached its usage limit for now. Please try again {0}.",
  later: "later",
  inWait: "in {0}",
  tooFast: "You're sending messages faster than this chat allows. You can send again in {0}.",
  /** A read refused because the visitor's network (one address, shared) made too many. */
  busyHere: "Too many requests from your network. Trying again in {0}.",
  site: "This chat isn't available on this site right now.",
  cantSend: "That message couldn't be sent: {0}",
  down: "The assistant is unavailable right now. Please try again in a moment.",
  units: "{0} s|{0} min|{0} h|{0} days",
};

export type Strings = typeof en;

/** English, in the bundle: the fallback and the language most visitors get. */
export const EN: Strings = en;

/**
 * The strings of `locale`, fetched from next to the widget's script (`from`); English when that
 * fails or the file lacks a text (each one must be a string, else English's is used).
 */
export async function loadStrings(locale: Locale, from: string): Promise<Strings> {
  if (locale === "en") return en;
  try {
    const res = await fetch(new URL(`widget/${locale}.json`, from).href, { credentials: "omit" });
    const got = (await res.json()) as Record<string, unknown>;
    const out = { ...en };
    for (const k of Object.keys(en) as (keyof Strings)[]) if (typeof got[k] === "string") out[k] = got[k];
    return out;
  } catch {
    return en;
  }
}

const isLocale = (s: string): s is Locale => (LOCALES as readonly string[]).includes(s);

/** The tenant's locale if it names one the widget speaks, else the browser's first one it speaks, else English. */
export function pickLocale(tenant: string | null | undefined, browser: readonly string[]): Locale {
  if (tenant && isLocale(tenant)) return tenant;
  for (const tag of browser) {
    const primary = tag.toLowerCase().split("-")[0] ?? "";
    if (isLocale(primary)) return primary;
  }
  return "en";
}

/** `template` with `{0}`, `{1}` ... replaced by `args`. */
export function fill(template: string, ...args: (string | number)[]): string {
  return template.replace(/\{(\d)\}/g, (_, n: string) => String(args[Number(n)] ?? ""));
}

/** "12 s", "4 min", "3 h", "5 days" (in the strings' language): how long a visitor must wait. */
export function waitFor(t: Strings, seconds: number): string {
  const [s, min, h, days] = t.units.split("|");
  if (seconds < 90) return fill(s ?? "", seconds);
  if (seconds < 90 * 60) return fill(min ?? "", Math.round(seconds / 60));
  if (seconds < 48 * 3600) return fill(h ?? "", Math.round(seconds / 3600));
  return fill(days ?? "", Math.round(seconds / 86_400));
}
