/**
 * Stands in for zod's `v4/core/compile.js` in the worker's bundle (wrangler.jsonc `alias`).
 *
 * zod's compiler writes a parser's source and builds it with `new Function`, which a Worker
 * refuses: there `compile()` falls back to the schema it was given, and nothing here calls it.
 * Its code generator is about 29 KiB of the bundle that every cold isolate parses. This module
 * keeps the names zod re-exports, with what they do in a Worker: `compile` answers the schema
 * unchanged (or refuses, with `strict`), and the generator refuses. `withParser`, which installs a
 * parser made elsewhere, is not bundled: it refuses too, saying so.
 */
import type { $ZodType } from "zod/v4/core";

export const INVALID: unique symbol = Symbol.for("zod.compile.invalid") as never;

export class ZodCompileAsyncError extends Error {
  constructor(message = "z.compile does not support async refinements, transforms, or checks") {
    super(message);
    this.name = "ZodCompileAsyncError";
  }
}

export class ZodCompileUnsupportedError extends Error {
  readonly islandable: boolean;
  constructor(feature: string, islandable = true) {
    super(`z.compile does not support ${feature}; this schema must use the runtime parser`);
    this.name = "ZodCompileUnsupportedError";
    this.islandable = islandable;
  }
}

const REFUSED = "code generation (a Worker refuses new Function; zod's compiler is not in this bundle)";

export function compileFn(): never {
  throw new ZodCompileUnsupportedError(REFUSED, false);
}

export function compile<T extends $ZodType>(schema: T, options?: { strict?: boolean }): T {
  if (options?.strict) compileFn();
  return schema;
}

export function withParser(): never {
  throw new ZodCompileUnsupportedError("withParser (not in this bundle: src/bundle/zod-compile.ts)", false);
}
