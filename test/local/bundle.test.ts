/**
 * The worker's bundle, built as `wrangler deploy` ships it (a dry run, with esbuild's metafile):
 * wrangler.jsonc's `alias` entries send three of zod's modules elsewhere (its locales to English,
 * its compiler and `fromJSONSchema` to src/bundle/). An alias applies to whatever imports that
 * exact specifier, so these tests check that only zod does, that the modules it replaces are gone,
 * that the stand-ins keep every name zod's modules export, and the size issue #20 asks for. And a
 * chat path's app (src/api-chat.ts), built on a cold isolate's first chat request, builds none of
 * the admin API's schema modules.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { buildWorkerBundle } from "../../bench/lib.ts";

interface Metafile {
  inputs: Record<string, { imports: { path: string; kind: string; original?: string }[] }>;
}

const outdir = mkdtempSync(join(tmpdir(), "chatedge-bundle-"));
let meta: Metafile;
const aliases = (env?: string) =>
  (unstable_readConfig({ config: "wrangler.jsonc", env }) as { alias?: Record<string, string> }).alias ?? {};

beforeAll(() => {
  buildWorkerBundle(outdir, { metafile: true });
  meta = JSON.parse(readFileSync(join(outdir, "bundle-meta.json"), "utf8"));
}, 120_000);
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe("the worker's bundle", () => {
  it("resolves each aliased specifier only where zod imports it, in every environment", () => {
    const top = aliases();
    expect(Object.keys(top).sort()).toEqual(["../locales/index.js", "./compile.js", "./from-json-schema.js"]);
    for (const env of ["staging", "production"]) expect(aliases(env)).toEqual(top);
    const importers = new Map<string, string[]>();
    for (const [file, input] of Object.entries(meta.inputs)) {
      for (const im of input.imports) {
        if (im.original === undefined || !(im.original in top)) continue;
        importers.set(im.original, [...(importers.get(im.original) ?? []), file]);
      }
    }
    // Each alias is used (else it is dead), and only by zod's own modules.
    expect([...importers.keys()].sort()).toEqual(Object.keys(top).sort());
    for (const files of importers.values()) {
      for (const file of files) expect(file).toMatch(/^node_modules\/zod\/v4\//);
    }
  });

  it("leaves out the modules the aliases replace", () => {
    const inputs = Object.keys(meta.inputs);
    expect(inputs).toContain("src/bundle/zod-compile.ts");
    expect(inputs).toContain("src/bundle/zod-from-json-schema.ts");
    expect(inputs).toContain("node_modules/zod/v4/locales/en.js");
    const zod = inputs.filter((f) => f.startsWith("node_modules/zod/"));
    expect(zod.filter((f) => /\/(compile|from-json-schema)\.js$/.test(f))).toEqual([]);
    expect(zod.filter((f) => f.includes("/locales/") && !f.endsWith("/locales/en.js"))).toEqual([]);
  });

  it("builds none of the other APIs' schema modules for a chat path's app", () => {
    // What src/api-chat.ts evaluates when a chat path's first request builds it: its static
    // imports, transitively (a dynamic import loads only when called).
    const reached = new Set<string>();
    const queue = ["src/api-chat.ts"];
    for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
      if (reached.has(file)) continue;
      reached.add(file);
      for (const im of meta.inputs[file]?.imports ?? [])
        if (im.kind === "import-statement") queue.push(im.path);
    }
    expect(reached.size).toBeGreaterThan(50);
    expect(reached).toContain("src/tenants/chat-schemas.ts");
    // The tenants', knowledge's and inbox's admin shapes: the chat app's share is in chat-schemas.ts.
    expect([...reached].filter((f) => /^src\/.*\/schemas\.ts$/.test(f))).toEqual([]);
  });

  it("is at most 300 KiB gzipped (issue #20)", () => {
    const gz = gzipSync(readFileSync(join(outdir, "index.js")), { level: 9 }).length;
    expect(gz / 1024).toBeLessThanOrEqual(300);
  });
});

describe("the stand-ins for zod's modules (src/bundle/)", () => {
  it("export every name zod's own modules export", async () => {
    // By file: zod's package exports do not name its inner modules.
    const zodDir = dirname(createRequire(import.meta.url).resolve("zod/package.json"));
    const pairs: [string, string][] = [
      ["v4/core/compile.js", "../../src/bundle/zod-compile.ts"],
      ["v4/classic/from-json-schema.js", "../../src/bundle/zod-from-json-schema.ts"],
    ];
    for (const [original, standIn] of pairs) {
      const names = Object.keys(await import(pathToFileURL(join(zodDir, original)).href)).sort();
      expect(names.length).toBeGreaterThan(0);
      expect(Object.keys(await import(standIn)).sort(), original).toEqual(names);
    }
  });

  it("do what zod's do in a Worker: compile answers the schema, or refuses when strict", async () => {
    const { z } = await import("zod");
    const { compile, compileFn, withParser, INVALID, ZodCompileUnsupportedError } = await import(
      "../../src/bundle/zod-compile.ts"
    );
    const schema = z.object({ n: z.number() });
    expect(compile(schema)).toBe(schema);
    expect(() => compile(schema, { strict: true })).toThrow(ZodCompileUnsupportedError);
    expect(() => compileFn()).toThrow(/new Function/);
    expect(() => withParser()).toThrow(/not in this bundle/);
    expect(INVALID).toBe(Symbol.for("zod.compile.invalid"));
    const { fromJSONSchema } = await import("../../src/bundle/zod-from-json-schema.ts");
    expect(() => fromJSONSchema()).toThrow(/not in this bundle/);
  });
});
