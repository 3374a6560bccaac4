/**
 * The paths of a visitor's chat and of the checks that watch it: the health probes, the widget's
 * config, the OpenAI-compatible endpoints and the conversation API (its live socket included). A
 * request to one is answered by the chat app (src/api-chat.ts), which an isolate builds without
 * every admin and dashboard route's schemas; any other path by the whole API, which mounts the
 * chat's routes too (test/worker/api-chat.test.ts holds both to the same routes on these paths).
 * Kept apart from the apps so that choosing one loads neither.
 */
const CHAT_PATHS = /^\/(?:healthz|readyz|v1\/(?:config|models|chat\/completions|conversations))(?:\/|$)/;

/** The path of a request URL, without parsing it whole: what follows the authority, up to `?`. */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  return query < 0 ? url.slice(start) : url.slice(start, query);
}

export function isChatPath(path: string): boolean {
  return CHAT_PATHS.test(path);
}
