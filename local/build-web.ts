/**
 * Builds the browser code in web/ into public/, the folder wrangler serves as static assets
 * (wrangler.jsonc "assets"): the widget (one small script, no dependencies), the console (a
 * single-page app with chart.js), the widget's translations (widget/<locale>.json, fetched only by
 * visitors who need one) and the demo page. public/ is generated: never edit it, never
 * commit it. Wrangler runs `node local/build-web.ts` before `dev` (and again when web/ changes)
 * and before `deploy` (wrangler.jsonc "build"). Several dev stacks may start at once (tests), so a
 * file is only replaced when its content changed, and then atomically (write, then rename).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { type BuildOptions, build } from "esbuild";
import { TRANSLATIONS } from "../web/widget/locales.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

export interface WebBuild {
  outDir: string;
  widgetBytes: number;
  widgetGzipBytes: number;
}

/** Copied as they are: HTML pages and the assets' header rules. */
const COPIED: Record<string, string> = {
  "web/console/index.html": "console/index.html",
  "web/demo/index.html": "demo/index.html",
  "web/_headers": "_headers",
};

async function bundle(entry: string, outfile: string, extra: BuildOptions = {}): Promise<Uint8Array> {
  const out = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    format: "iife",
    target: "es2020",
    legalComments: "none",
    logLevel: "warning",
    absWorkingDir: root,
    write: false,
    ...extra,
  });
  const file = out.outputFiles?.[0];
  if (!file) throw new Error(`esbuild wrote nothing for ${entry}`);
  return file.contents;
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)));
}

/** Writes `content` unless the file already holds it; a rename makes the change atomic. */
function put(path: string, content: Uint8Array): void {
  if (existsSync(path) && Buffer.compare(readFileSync(path), content) === 0) return;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/** Bundles web/ into `outDir` (default public/); files no longer built are removed. */
export async function buildWeb(outDir = join(root, "public")): Promise<WebBuild> {
  const [widget, widgetLive, consoleJs, consoleCss] = await Promise.all([
    bundle("web/widget/main.ts", "widget.js"),
    bundle("web/widget/live-entry.ts", "widget-live.js"),
    bundle("web/console/main.ts", "console/app.js"),
    bundle("web/console/console.css", "console/app.css", { format: undefined }),
  ]);
  const out: Record<string, Uint8Array> = {
    "widget.js": widget,
    "widget-live.js": widgetLive,
    "console/app.js": consoleJs,
    "console/app.css": consoleCss,
  };
  for (const [from, to] of Object.entries(COPIED)) out[to] = readFileSync(join(root, from));
  for (const [locale, strings] of Object.entries(TRANSLATIONS))
    out[`widget/${locale}.json`] = new TextEncoder().encode(JSON.stringify(strings));
  for (const [name, content] of Object.entries(out)) put(join(outDir, name), content);
  for (const name of files(outDir)) if (!(name in out) && !name.endsWith(".tmp")) rmSync(join(outDir, name));
  return { outDir, widgetBytes: widget.length, widgetGzipBytes: gzipSync(widget, { level: 9 }).length };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await buildWeb();
  console.log(
    `[build-web] ${out.outDir}: widget.js ${out.widgetBytes} bytes, ${out.widgetGzipBytes} gzipped`,
  );
}
