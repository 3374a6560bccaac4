/** The tenant's colour, and the text colour that stays readable on it. */

const HEX = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i;

/** WCAG relative luminance of a "#rgb" or "#rrggbb" colour. */
export function luminance(hex: string): number {
  const h = hex.length === 4 ? hex.replace(/[0-9a-f]/gi, (d) => d + d) : hex;
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = Number.parseInt(h.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * (r ?? 0) + 0.7152 * (g ?? 0) + 0.0722 * (b ?? 0);
}

/** WCAG contrast ratio of two luminances (1 to 21). */
export const contrast = (a: number, b: number) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);

/**
 * Black or white, whichever contrasts more with `accent`: one of the two always reaches 4.58:1,
 * above WCAG AA's 4.5:1 for text, whatever colour the tenant picked.
 */
export function readableOn(accent: string): "#000000" | "#ffffff" {
  const l = luminance(accent);
  return contrast(l, 0) > contrast(l, 1) ? "#000000" : "#ffffff";
}

/** The accent and its text colour, or undefined for a value that is not a hex colour. */
export function accentColors(accent: string | null | undefined): { a: string; f: string } | undefined {
  return accent && HEX.test(accent) ? { a: accent, f: readableOn(accent) } : undefined;
}
