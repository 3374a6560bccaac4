/**
 * The tenant's optional bot check (Cloudflare Turnstile), passed once before a visitor's first
 * conversation: the server answers a visitor token after it, which is the proof from then on.
 * Turnstile's script goes into the page's <head> (not the shadow root: it is a page script), loaded
 * only when the tenant turns the check on, and renders into a light-DOM element the view slots in.
 */
import type { PublicConfig } from "../../src/api-types";

type Settings = NonNullable<PublicConfig["turnstile"]>;

/** The part of Turnstile's explicit-render API the widget uses. */
interface Turnstile {
  render(container: HTMLElement, options: Record<string, unknown>): string | undefined;
  reset(id: string): void;
  remove(id: string): void;
}

/** The check cannot be passed here: Turnstile refused the browser, or its script did not load. */
export class BotCheckError extends Error {}

let script: Promise<Turnstile> | undefined;

function load(url: string): Promise<Turnstile> {
  const w = window as Window & { turnstile?: Turnstile };
  script ??= new Promise<Turnstile>((resolve, reject) => {
    if (w.turnstile) return resolve(w.turnstile);
    const s = document.createElement("script");
    s.src = url;
    s.async = true;
    s.onload = () => (w.turnstile ? resolve(w.turnstile) : reject(new BotCheckError("no turnstile")));
    s.onerror = () => reject(new BotCheckError("turnstile did not load"));
    document.head.append(s);
  }).catch((err: unknown) => {
    script = undefined; // a later attempt loads it again
    throw err instanceof BotCheckError ? err : new BotCheckError(String(err));
  });
  return script;
}

/** One Turnstile widget: a token per conversation start, a fresh challenge after each use. */
export interface BotCheck {
  /** The next token: shows the check, waiting for Turnstile (and the visitor, if it asks them). */
  token(): Promise<string>;
  /** A token is single-use: after a start that worked the check goes away, else it runs again. */
  spent(passed: boolean): void;
}

/** A bot check rendering into `box` (a light-DOM element); `show` reveals its place in the panel. */
export function botCheck(settings: Settings, box: HTMLElement, show: (on: boolean) => void): BotCheck {
  // A closure rather than a class: es2020's private-field helpers would weigh more than this code.
  let api: Turnstile | undefined;
  let id: string | undefined;
  let settle: { ok(t: string): void; fail(e: Error): void } = { ok() {}, fail() {} };
  const expect = () => {
    const next = new Promise<string>((ok, fail) => {
      settle = { ok, fail };
    });
    next.catch(() => {}); // nobody may be waiting when Turnstile fails
    return next;
  };
  let token = expect();
  return {
    async token() {
      show(true);
      if (!id) {
        api = await load(settings.script_url);
        id = api.render(box, {
          sitekey: settings.site_key,
          "response-field": false,
          callback: (t: string) => settle.ok(t),
          "error-callback": (code: unknown) => {
            settle.fail(new BotCheckError(`turnstile error ${String(code)}`));
            return true; // handled: the visitor is told, the next attempt resets
          },
          "expired-callback": () => {
            token = expect();
          },
        });
      }
      return token;
    },
    spent(passed) {
      token = expect();
      if (!api || !id) return;
      if (passed) {
        api.remove(id);
        id = undefined;
        show(false);
      } else api.reset(id);
    },
  };
}
