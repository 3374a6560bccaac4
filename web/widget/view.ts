import { el } from "../shared/dom";
import { CSS } from "./styles";

/** What the visitor can do; the controller (chat.ts) implements it. */
export interface Actions {
  open(focus?: boolean): void;
  close(): void;
  send(text: string): void;
  askEnd(): void;
  end(resolved: boolean | null): void;
  rate(csat: number): void;
  restart(): void;
}

/** The footer's modes: writing, "did we answer?", the 1-5 rating, and thanks. */
export type Step = "chat" | "resolve" | "rate" | "thanks";

const SVG = "http://www.w3.org/2000/svg";
const RATINGS = ["very poor", "poor", "okay", "good", "excellent"];

/** A speech-bubble icon, built node by node (no innerHTML: pages with Trusted Types refuse it). */
function icon(): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
  svg.append(path);
  return svg;
}

/** Constructed stylesheets where supported (no inline <style>, so strict style-src CSPs allow it). */
function adoptStyles(root: ShadowRoot): void {
  if ("adoptedStyleSheets" in root && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else root.append(el("style", {}, CSS));
}

/** The widget's DOM inside its shadow root: a bubble and a chat panel, all native controls. */
export class View {
  readonly bubble = el("button", { class: "bubble", "aria-label": "Open chat", "aria-expanded": "false" });
  readonly panel = el("section", { class: "panel", role: "dialog", "aria-label": "Chat", hidden: "" });
  readonly title = el("h2", {}, "Chat");
  readonly endButton = el("button", { type: "button", hidden: "" }, "End chat");
  readonly log = el("div", { class: "log", role: "log", "aria-live": "polite" });
  readonly status = el("div", { class: "status", role: "status", "aria-live": "polite" });
  readonly input = el("textarea", {
    rows: "1",
    maxlength: "8000",
    placeholder: "Type your message…",
    "aria-label": "Message",
  });
  readonly sendButton = el("button", { type: "submit" }, "Send");
  readonly form = el("form", {}, this.input, this.sendButton);
  /**
   * Where the bot check (turnstile.ts) renders: Turnstile needs an element of the page's own DOM,
   * so this one is a light-DOM child of the host, shown in the panel through a named slot. A custom
   * tag name keeps a page's `div {...}` rules off it.
   */
  readonly checkBox = document.createElement("chatedge-check");
  readonly #check = el("div", { class: "check", hidden: "" });
  readonly steps: Record<Exclude<Step, "chat">, HTMLElement>;

  constructor(root: ShadowRoot, act: Actions) {
    const close = el("button", { type: "button", "aria-label": "Close chat" }, "✕");
    this.steps = {
      resolve: el(
        "div",
        { class: "step", hidden: "" },
        el("p", {}, "Did we answer your question?"),
        el(
          "div",
          { class: "row" },
          this.#button("Yes", () => act.end(true)),
          this.#button("No", () => act.end(false)),
        ),
        this.#button("Back to the chat", () => act.end(null)),
      ),
      rate: el(
        "div",
        { class: "step", hidden: "", role: "group", "aria-label": "Rate this chat" },
        el("p", {}, "How would you rate this chat? (1 = very poor, 5 = excellent)"),
        el(
          "div",
          { class: "row stars" },
          ...RATINGS.map((label, i) => {
            const b = this.#button(String(i + 1), () => act.rate(i + 1));
            b.setAttribute("aria-label", `${i + 1} of 5, ${label}`);
            b.dataset.csat = String(i + 1);
            return b;
          }),
        ),
      ),
      thanks: el(
        "div",
        { class: "step", hidden: "" },
        el("p", {}, "Thanks for your feedback! This chat has ended."),
        this.#button("Start a new chat", () => act.restart()),
      ),
    };
    this.bubble.append(icon());
    this.bubble.setAttribute("aria-controls", "chatedge-panel");
    this.panel.id = "chatedge-panel";
    this.panel.tabIndex = -1;
    this.panel.append(
      el("header", {}, this.title, this.endButton, close),
      this.log,
      this.#check,
      this.status,
      this.form,
      ...Object.values(this.steps),
    );
    adoptStyles(root);
    root.append(this.panel, this.bubble);
    const slot = document.createElement("slot");
    slot.name = "check";
    this.checkBox.slot = "check";
    this.#check.append(slot);
    root.host.append(this.checkBox);

    this.bubble.addEventListener("click", () => (this.panel.hidden ? act.open() : act.close()));
    close.addEventListener("click", () => act.close());
    this.endButton.addEventListener("click", () => act.askEnd());
    this.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") act.close();
    });
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this.input.value.trim();
      if (text && !this.sendButton.disabled) act.send(text);
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.form.requestSubmit();
      }
    });
  }

  #button(label: string, onClick: () => void): HTMLButtonElement {
    const b = el("button", { type: "button" }, label);
    b.addEventListener("click", onClick);
    return b;
  }

  /** Shows or hides the panel, moving focus where a keyboard user expects it (when `focus`). */
  setOpen(open: boolean, focus = true): void {
    this.panel.hidden = !open;
    this.bubble.setAttribute("aria-expanded", String(open));
    this.bubble.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    if (!focus) return;
    if (open) (this.form.hidden || this.input.disabled ? this.panel : this.input).focus();
    else this.bubble.focus();
  }

  setTitle(name: string): void {
    this.title.textContent = name;
    this.panel.setAttribute("aria-label", `Chat with ${name}`);
  }

  /** Appends a message and keeps the newest in view. */
  add(role: "user" | "assistant", text: string): HTMLElement {
    const m = el("div", { class: `msg ${role}` }, text);
    this.log.append(m);
    this.scroll();
    return m;
  }

  scroll(): void {
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** The status line under the log; empty text clears it. */
  notice(text: string, kind: "info" | "error" = "info"): void {
    this.status.textContent = text;
    this.status.className = `status ${kind}`;
  }

  /** Shows or hides the bot check's place in the panel. */
  showCheck(on: boolean): void {
    this.#check.hidden = !on;
  }

  /** Disables writing while a message is on its way or sending must wait. */
  busy(on: boolean): void {
    this.input.disabled = on;
    this.sendButton.disabled = on;
  }

  /** Puts the keyboard back in the message box, unless the visitor has moved on to the page. */
  focusInput(): void {
    const host = (this.panel.getRootNode() as ShadowRoot).host;
    const active = document.activeElement;
    if (active && active !== document.body && active !== host) return;
    if (!this.panel.hidden && !this.form.hidden && !this.input.disabled) this.input.focus();
  }

  /** Switches the footer to one step of the chat's life. */
  step(s: Step, canEnd: boolean): void {
    this.form.hidden = s !== "chat";
    for (const [name, node] of Object.entries(this.steps)) node.hidden = name !== s;
    this.endButton.hidden = !(s === "chat" && canEnd);
    const first = s === "chat" ? undefined : this.steps[s].querySelector("button");
    if (first && !this.panel.hidden) first.focus();
  }
}
