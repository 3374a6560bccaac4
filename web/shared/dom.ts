/** Children an element can take: nodes, text, or nothing (skipped, for conditional parts). */
export type Kid = Node | string | null | undefined | false;

/** An element with attributes and children, never through innerHTML: text is not parsed as markup. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...kids: Kid[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}
