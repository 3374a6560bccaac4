import { createServer, type Server } from "node:http";
import { listen } from "../../local/ports.ts";

export interface Site {
  origin: string;
  close(): Promise<void>;
}

/** A tenant's website on its own origin: serves `pages` (path -> HTML, read per request) and 404 for the rest. */
export async function serveSite(pages: Record<string, string>): Promise<Site> {
  const server: Server = createServer((req, res) => {
    const html = pages[new URL(req.url ?? "/", "http://site").pathname];
    res.writeHead(html === undefined ? 404 : 200, { "content-type": "text/html; charset=utf-8" });
    res.end(html ?? "not found");
  });
  const port = await listen(server, 0, "127.0.0.1");
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A plain shop page with the widget's one script tag. */
export function widgetPage(base: string, key: string, title = "Acme Outdoor"): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${title}</title>
<style>body{font:16px/1.6 Georgia,serif;max-width:760px;margin:48px auto;padding:0 24px;color:#333}
h1{font-family:system-ui,sans-serif}
/* A careless site stylesheet: it must not reach into the widget. */
div,button,textarea{text-transform:uppercase!important;background:#ff00ff!important}</style></head>
<body>
<h1>${title}</h1>
<p>Tents, stoves and sleeping bags, shipped in two days. Questions about an order? Ask our assistant in the corner.</p>
<script src="${base}/widget.js" data-key="${key}" async></script>
</body>
</html>`;
}
