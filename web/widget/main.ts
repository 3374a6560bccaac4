/**
 * The embeddable chat widget: `<script src="https://<host>/widget.js" data-key="pk_..." async>`.
 * Optional `data-api` names the API's origin (default: where this script came from); optional
 * `data-user-id` with `data-user-hash` (its HMAC under the tenant's identity secret, computed by the
 * tenant's server) make the visitor that logged-in user, on every device (docs/web.md).
 */
import { Chat } from "./chat";
import { Memo, VisitorToken } from "./storage";
import { View } from "./view";

interface Flagged {
  chatedgeWidget?: boolean;
}

function currentScript(): HTMLScriptElement | null {
  const s = document.currentScript;
  if (s instanceof HTMLScriptElement) return s;
  return document.querySelector<HTMLScriptElement>("script[data-key][src*='widget.js']");
}

function mount(script: HTMLScriptElement): void {
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
  // The controller and the view need each other: the view calls its actions, the controller draws.
  let chat: Chat | undefined;
  const view = new View(root, {
    open: (focus) => chat?.open(focus),
    close: () => chat?.close(),
    send: (t) => chat?.send(t),
    askEnd: () => chat?.askEnd(),
    end: (r) => chat?.end(r),
    rate: (n) => chat?.rate(n),
    restart: () => chat?.restart(),
  });
  chat = new Chat({ base, key, visitor, user }, session, slot, view);
  document.body.append(host);
  // The same tab comes back to the panel as it left it.
  if (session.get(`${slot}:open`)) chat.open(false);
}

const w = window as Window & Flagged;
const script = currentScript();
if (script && !w.chatedgeWidget) {
  w.chatedgeWidget = true;
  if (document.body) mount(script);
  else document.addEventListener("DOMContentLoaded", () => mount(script), { once: true });
}
