import { getPath } from "hono/utils/url";
import type { App } from "./app";
import { isChatPath } from "./chat-paths";
import type { RawEnv } from "./env";
import { markArrival } from "./response-timing";

export { GlobalGate } from "./admission/global-gate";
export { TenantGate } from "./admission/tenant-gate";
export { Conversation } from "./chat/conversation-do";

// What the module evaluates when an isolate starts is only the Durable Object classes: the HTTP API
// (every route's zod schemas, the OpenAPI registry), the queue consumers and the cron are bundled
// in but evaluated on their first call (dynamic imports), so an isolate that serves one kind of
// event never builds the others (bench/startup.ts). The HTTP API is two apps: a chat path
// (src/chat-paths.ts) gets the chat's routes alone (src/api-chat.ts), any other path the whole API;
// each is built on its first request and kept for the isolate's life.
const apps = new Map<"chat" | "all", Promise<App>>();
function appFor(pathname: string): Promise<App> {
  const which = isChatPath(pathname) ? "chat" : "all";
  let app = apps.get(which);
  if (!app) {
    app = (
      which === "chat"
        ? import("./api-chat").then((m) => m.buildChatApp())
        : import("./api").then((m) => m.buildApp())
    ).catch((err: unknown) => {
      apps.delete(which);
      throw err;
    });
    apps.set(which, app);
  }
  return app;
}

export default {
  fetch: async (request, env, ctx) => {
    // Before anything else (the app's first load included): response times start here.
    markArrival(request);
    return (await appFor(getPath(request))).fetch(request, env, ctx);
  },
  async queue(batch, env, ctx) {
    await (await import("./consumers")).consume(batch, env, ctx);
  },
  async scheduled(controller, env, ctx) {
    await (await import("./monitoring/cron")).runScheduled(controller, env, ctx);
  },
} satisfies ExportedHandler<RawEnv>;
