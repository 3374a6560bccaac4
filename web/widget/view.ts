import type { PublicConfig } from "../../src/api-types";
import { el } from "../shared/dom";
import { fill, type Strings } from "./i18n";
import { MarkdownView } from "./markdown";
import { CSS } from "./styles";
import { accentColors } from "./theme";

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

/** Who a message of the log is from: the visitor, the bot, a person of the team, or a notice. */
export type Role = "user" | "assistant" | "operator" | "system";

const SVG = "http://www.w3.org/2000/svg";

/** One message in the log: a visually hidden speaker label, then its text (the assistant's as Markdown). */
export class Message {
  readonly el: HTMLElement;
  readonly #body = el("div", { class: "body" });
  readonly #md: MarkdownView | undefined;

  constructor(role: Role, label: string) {
    this.el = el("div", { class: `msg ${role}` }, el("span", { class: "sr" }, label), this.#body);
    if (role === "assistant") this.#md = new MarkdownView(this.#body);
    // A person's words show who wrote them; they are plain text, never Markdown.
    if (role === "operator") this.el.prepend(el("div", { class: "who", "aria-hidden": "true" }, label));
  }

  /** Shows `text`; while an answer streams, each call carries the longer text. */
  show(text: string): void {
    if (this.#md) this.#md.show(text);
    else this.#body.textContent = text;
  }

  /** The text as shown (Markdown rendered, blocks on their own lines): what a screen reader hears. */
  shown(): string {
    // biome-ignore lint/performance/useDomNodeTextContent: only the rendered text keeps paragraphs and list items apart
    return this.#body.innerText;
  }
}

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
  readonly bubble: HTMLButtonElement;
  readonly panel: HTMLElement;
  readonly title: HTMLElement;
  readonly endButton: HTMLButtonElement;
  /**
   * The transcript. Not itself live: a streamed answer would be read out word by word. Finished
   * answers are announced once, whole, through `#said`.
   */
  readonly log = el("div", { class: "log", role: "log", "aria-live": "off" });
  readonly #said = el("div", { class: "sr", "aria-live": "polite", "aria-atomic": "true" });
  readonly status = el("div", { class: "status", role: "status", "aria-live": "polite" });
  readonly input: HTMLTextAreaElement;
  readonly sendButton: HTMLButtonElement;
  readonly form: HTMLFormElement;
  readonly #avatars: HTMLImageElement[] = [];
  readonly #icon = icon();
  /**
   * Where the bot check (turnstile.ts) renders: Turnstile needs an element of the page's own DOM,
   * so this one is a light-DOM child of the host, shown in the panel through a named slot. A custom
   * tag name keeps a page's `div {...}` rules off it.
   */
  readonly checkBox = document.createElement("chatedge-check");
  readonly #check = el("div", { class: "check", hidden: "" });
  readonly steps: Record<Exclude<Step, "chat">, HTMLElement>;

  constructor(
    readonly root: ShadowRoot,
    act: Actions,
    readonly t: Strings,
  ) {
    this.bubble = el("button", { class: "bubble", "aria-label": t.open, "aria-expanded": "false" });
    this.panel = el("section", { class: "panel", role: "dialog", "aria-label": t.chat, hidden: "" });
    this.title = el("h2", {}, t.chat);
    this.endButton = el("button", { type: "button", hidden: "" }, t.end);
    this.input = el("textarea", {
      rows: "1",
      maxlength: "8000",
      placeholder: t.placeholder,
      "aria-label": t.message,
    });
    this.sendButton = el("button", { type: "submit" }, t.send);
    this.form = el("form", {}, this.input, this.sendButton);
    const close = el("button", { type: "button", "aria-label": t.close }, "✕");
    const ratings = t.ratings.split("|");
    this.steps = {
      resolve: el(
        "div",
        { class: "step", hidden: "" },
        el("p", {}, t.answered),
        el(
          "div",
          { class: "row" },
          this.#button(t.yes, () => act.end(true)),
          this.#button(t.no, () => act.end(false)),
        ),
        this.#button(t.back, () => act.end(null)),
      ),
      rate: el(
        "div",
        { class: "step", hidden: "", role: "group", "aria-label": t.rateLabel },
        el("p", {}, t.rateAsk),
        el(
          "div",
          { class: "row stars" },
          ...ratings.map((label, i) => {
            const b = this.#button(String(i + 1), () => act.rate(i + 1));
            b.setAttribute("aria-label", fill(t.ofFive, i + 1, label));
            b.dataset.csat = String(i + 1);
            return b;
          }),
        ),
      ),
      thanks: el(
        "div",
        { class: "step", hidden: "" },
        el("p", {}, t.thanks),
        this.#button(t.restart, () => act.restart()),
      ),
    };
    this.bubble.append(this.#icon);
    this.bubble.setAttribute("aria-controls", "chatedge-panel");
    this.panel.id = "chatedge-panel";
    this.panel.tabIndex = -1;
    this.panel.append(
      el("header", {}, this.title, this.endButton, close),
      this.log,
      this.#check,
      this.status,
      this.#said,
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
    this.bubble.setAttribute("aria-label", open ? this.t.close : this.t.open);
    if (!focus) return;
    if (open) (this.form.hidden || this.input.disabled ? this.panel : this.input).focus();
    else this.bubble.focus();
  }

  setTitle(name: string): void {
    this.title.textContent = name;
    this.panel.setAttribute("aria-label", fill(this.t.chatWith, name));
  }

  /**
   * The tenant's look: title, accent (with black or white text on it, whichever reads), avatar in
   * the bubble and the title bar, and the corner. Values that are not what the API promises are
   * ignored (the API validates them; this keeps a bad one from reaching the styles).
   */
  theme(w: PublicConfig["widget"]): void {
    this.setTitle(w.title);
    const host = this.root.host as HTMLElement;
    const colors = accentColors(w.accent_color);
    if (colors) {
      host.style.setProperty("--a", colors.a);
      host.style.setProperty("--f", colors.f);
    }
    host.toggleAttribute("data-left", w.position === "bottom-left");
    for (const img of this.#avatars.splice(0)) img.remove();
    this.#icon.style.display = "";
    if (!w.avatar_url?.startsWith("https://")) return;
    for (const big of [true, false]) {
      // Decorative: the bubble and the title already say what they are.
      const img = el("img", { class: "avatar", alt: "", src: w.avatar_url, referrerpolicy: "no-referrer" });
      img.addEventListener("error", () => {
        img.remove();
        this.#icon.style.display = "";
      });
      if (big) this.bubble.prepend(img);
      else this.title.before(img);
      this.#avatars.push(img);
    }
    this.#icon.style.display = "none";
  }

  /** Appends a message and keeps the newest in view. */
  add(role: Role, text: string, author?: string | null): Message {
    const label =
      role === "user"
        ? this.t.you
        : role === "assistant"
          ? this.t.bot
          : role === "operator"
            ? (author ?? "")
            : "";
    const m = new Message(role, label);
    m.show(text);
    this.log.append(m.el);
    this.scroll();
    return m;
  }

  /** Says `text` to screen readers once (a finished answer, not each word of it). */
  announce(text: string): void {
    this.#said.textContent = text;
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
