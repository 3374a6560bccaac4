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

/** A random anonymous visitor id, kept in localStorage so a returning visitor is the same user. */
export function visitorId(local: Memo): string {
  const known = local.get("chatedge:visitor");
  if (known && /^[A-Za-z0-9_.:-]{8,128}$/.test(known)) return known;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const id = `v_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  local.set("chatedge:visitor", id);
  return id;
}
