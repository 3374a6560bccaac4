/**
 * Short model names tenants may use, and the model each one calls. Routing (`registry.ts`) and
 * pricing (`src/admission/pricing.ts`) both read this one table, so a name is priced as the model
 * it actually calls.
 */

// Anything else starting with "claude-" goes upstream unchanged.
export const ANTHROPIC_ALIASES: Readonly<Record<string, string>> = {
  "claude-haiku": "claude-haiku-4-5",
  "claude-sonnet": "claude-sonnet-4-5",
};

/** The name of the model a public name calls: an alias's target, else the name itself. */
export function calledModel(name: string): string {
  return ANTHROPIC_ALIASES[name] ?? name;
}
