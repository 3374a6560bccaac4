/**
 * The API docs page (/docs): Swagger UI over /openapi.json. Its script and stylesheet come from a
 * CDN at one pinned version, each with its Subresource Integrity hash, so a changed file is refused
 * by the browser rather than run next to an admin token someone pastes in; the page's own inline
 * script runs by a per-request nonce, and the Content-Security-Policy allows nothing else.
 * To move to another version, take the hashes from the npm tarball of swagger-ui-dist (jsDelivr
 * serves its files unchanged): `openssl dgst -sha384 -binary swagger-ui-bundle.js | openssl base64 -A`.
 */
import type { Context } from "hono";
import type { AppEnv } from "./app.ts";

const CDN = "https://cdn.jsdelivr.net";
const SWAGGER_UI = `${CDN}/npm/swagger-ui-dist@5.35.0`;
const BUNDLE_SRI = "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9";
const CSS_SRI = "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I";

/** The page's policy: the pinned CDN files, its nonce'd script, and API calls to its own origin. */
export function docsPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}' ${SWAGGER_UI}/`,
    // Swagger UI sets style attributes on the elements it renders.
    `style-src ${SWAGGER_UI}/ 'unsafe-inline'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** GET /docs. */
export function docsPage(c: Context<AppEnv>): Response {
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chatedge API</title>
<link rel="stylesheet" href="${SWAGGER_UI}/swagger-ui.css" integrity="${CSS_SRI}" crossorigin="anonymous">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${SWAGGER_UI}/swagger-ui-bundle.js" integrity="${BUNDLE_SRI}" crossorigin="anonymous"></script>
<script nonce="${nonce}">
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null });
</script>
</body>
</html>
`;
  return c.html(html, 200, {
    "Content-Security-Policy": docsPolicy(nonce),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
  });
}
