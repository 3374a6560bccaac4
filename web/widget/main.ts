/**
 * The embeddable chat widget: `<script src="https://<host>/widget.js" data-key="pk_..." async>`.
 * Optional `data-api` names the API's origin (default: where this script came from); optional
 * `data-user-id` with `data-user-hash` (its HMAC under the tenant's identity secret, computed by the
 * tenant's server) make the visitor that logged-in user, on every device (docs/web.md). The page
 * drives it with `window.chatedge`: `open()`, `close()`, `identify({ userId, userHash } | null)`.
 */
import type { PublicConfig } from "../../src/api-types";
import { type Client, json } from "./api";
import { Chat } from "./chat";
import { EN, loadStrings, pickLocale } from "./i18n";
import { Memo, VisitorToken } from "./storage";
import { View } from "./view";

/** What a page may call: `window.chatedge`. */
export interface ChatedgeApi {
  open(): void;
  close(): void;
  /** The signed-in user (the same id and hash as data-user-id, data-user-hash), or null: signed out. */
  identify(user: { userId: string; userHash: string } | null): void;
}

interface Flagged {
  chatedgeWidget?: boolean;
  chatedge?: ChatedgeApi;
}

const HASH = /^[0-9a-f]{64}$/i;

function currentScript(): HTMLScriptElement | null {
  const s = document.currentScript;
  if (s instanceof HTMLScriptElement) return s;
  return document.querySelector<HTMLScriptElement>("script[data-key][src*='widget.js']");
}

/** The user `identify` was given, as the API takes it; a malformed one throws at the caller. */
function userOf(u: unknown): Client["user"] {
  if (u === null || u === undefined) return undefined;
  const { userId, userHash } = u as { userId?: unknown; userHash?: unknown };
  if (typeof userId !== "string" || userId.length < 1 || userId.length > 256)
    throw new TypeError("chatedge.identify: userId must be a string of 1 to 256 characters");
  // An id without the tenant's server's signature is refused by the API: say so here, plainly.
  if (typeof userHash !== "string" || !HASH.test(userHash))
    throw new TypeError("chatedge.identify: userHash must be the hex HMAC-SHA256 of userId (docs/web.md)");
  return { user_id: userId, user_hash: userHash };
}

function mount(script: HTMLScriptElement, ready: (chat: Chat) => void): void {
  const key = script.dataset.key ?? "";
  if (!/^pk_[A-Za-z0-9]{8,}$/.test(key)) {
    console.error("chatedge widget: data-key must be a publishable key (pk_...)");
    return;
  }
  const base = (script.dataset.api ?? new URL(script.src, location.href).origin).replace(/\/+$/, "");
  const host = document.createElement("chatedge-widget");
  const root = host.attachShadow({ mode: "open" });
  const session = new Memo("sessionStorage");
  const slot = `chatedge:${key.slice(0, 15)}`;
  const { userId, userHash } = script.dataset;
  const user = userId && userHash ? { user_id: userId, user_hash: userHash } : undefined;
  const visitor = new VisitorToken(new Memo("localStorage"), user?.user_id);
  // Another user (or none) than the stored token's: start fresh, not in the last one's conversation.
  if (!visitor.get()) session.set(`${slot}:conversation`, null);
  const api: Client = { base, key, visitor, user };
  // The look and the language come from the tenant's configuration, so the bubble waits for it; if
  // it cannot be had now, the widget shows in the browser's language and tries again on open. The
  // browser's language is fetched meanwhile: most tenants leave the choice to it.
  const languages = navigator.languages ?? [navigator.language];
  const guess = pickLocale(null, languages);
  const early = loadStrings(guess, script.src);
  void json<PublicConfig>(api, "GET", "/v1/config")
    .catch(() => undefined)
    .then(async (config) => {
      const locale = pickLocale(config?.widget.locale, languages);
      const strings = await (locale === guess ? early : loadStrings(locale, script.src));
      host.setAttribute("lang", strings === EN ? "en" : locale);
      // The controller and the view need each other: the view calls its actions, the controller draws.
      let chat: Chat | undefined;
      const view = new View(
        root,
        {
          open: (focus) => chat?.open(focus),
          close: () => chat?.close(),
          send: (t) => chat?.send(t),
          askEnd: () => chat?.askEnd(),
          end: (r) => chat?.end(r),
          rate: (n) => chat?.rate(n),
          restart: () => chat?.restart(),
        },
        strings,
      );
      if (config) view.theme(config.widget);
      chat = new Chat(api, session, slot, view, config, script.src);
      document.body.append(host);
      // The same tab comes back to the panel as it left it.
      if (session.get(`${slot}:open`)) chat.open(false);
      ready(chat);
    });
}

const w = window as Window & Flagged;
const script = currentScript();
if (script && !w.chatedgeWidget) {
  w.chatedgeWidget = true;
  // Calls made before the widget is ready wait for it, in order.
  let chat: Chat | undefined;
  const waiting: ((c: Chat) => void)[] = [];
  const later = (fn: (c: Chat) => void) => (chat ? fn(chat) : waiting.push(fn));
  w.chatedge = {
    open: () => later((c) => c.open()),
    close: () => later((c) => c.close()),
    identify: (u) => {
      const user = userOf(u);
      later((c) => c.identify(user));
    },
  };
  const ready = (c: Chat) => {
    chat = c;
    for (const fn of waiting.splice(0)) fn(c);
  };
  if (document.body) mount(script, ready);
  else document.addEventListener("DOMContentLoaded", () => mount(script, ready), { once: true });
  window.dispatchEvent(new Event("chatedge:ready"));
}
