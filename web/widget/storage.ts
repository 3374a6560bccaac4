/** What the widget remembers: the visitor (localStorage) and this tab's conversation (sessionStorage). */

function area(kind: "localStorage" | "sessionStorage"): Storage | undefined {
  try {
    const s = window[kind];
    s.getItem("chatedge");
    return s;
  } catch {
    // Storage blocked (privacy settings, sandboxed frames): remember nothing past this page.
    return undefined;
  }
}

/** A small string store over one Storage area, falling back to memory. */
export class Memo {
  readonly #area: Storage | undefined;
  readonly #memory = new Map<string, string>();

  constructor(kind: "localStorage" | "sessionStorage") {
    this.#area = area(kind);
  }

  get(name: string): string | null {
    return this.#area ? this.#area.getItem(name) : (this.#memory.get(name) ?? null);
  }

  set(name: string, value: string | null): void {
    if (value === null) {
      this.#area?.removeItem(name);
      this.#memory.delete(name);
    } else if (this.#area) this.#area.setItem(name, value);
    else this.#memory.set(name, value);
  }
}

/**
 * The visitor's signed token, kept in localStorage so a returning visitor is the same visitor. The
 * server issues it when the visitor first starts a conversation; the widget cannot make one up. It
 * is kept with the user id it was issued for (`data-user-id`, "" when anonymous): a page naming
 * another user, or none, does not use it.
 */
export class VisitorToken {
  constructor(
    readonly local: Memo,
    readonly user = "",
  ) {}

  get(): string | undefined {
    const t = this.local.get("chatedge:visitor-token");
    if ((this.local.get("chatedge:visitor-user") ?? "") !== this.user) return undefined;
    return t && /^vt1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(t) && t.length <= 8192 ? t : undefined;
  }

  set(token: string): void {
    this.local.set("chatedge:visitor-token", token);
    this.local.set("chatedge:visitor-user", this.user || null);
  }
}
