/**
 * The paths of a visitor's chat and of the checks that watch it: the health probes, the widget's
 * config, the OpenAI-compatible endpoints and the conversation API (its live socket included). A
 * request to one is answered by the chat app (src/api-chat.ts), which an isolate builds without
 * every admin and dashboard route's schemas; any other path by the whole API, which mounts the
 * chat's routes too (test/worker/api-chat.test.ts holds both to the same routes on these paths).
 * Kept apart from the apps so that choosing one loads neither. Given the path as Hono's router
 * reads it (`getPath`: percent-decoded, without the query), so the app chosen is the one whose
 * routes the request would meet.
 */
const CHAT_PATHS = /^\/(?:healthz|readyz|v1\/(?:config|models|chat\/completions|conversations))(?:\/|$)/;

export function isChatPath(path: string): boolean {
  return CHAT_PATHS.test(path);
}
