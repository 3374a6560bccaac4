import type { buildApp } from "./api";
import type { RawEnv } from "./env";
import { markArrival } from "./response-timing";

export { GlobalGate } from "./admission/global-gate";
export { TenantGate } from "./admission/tenant-gate";
export { Conversation } from "./chat/conversation-do";

// What the module evaluates when an isolate starts is only the Durable Object classes: the HTTP API
// (every route's zod schemas, the OpenAPI registry), the queue consumers and the cron are bundled
// in but evaluated on their first call (dynamic imports), so an isolate that serves one kind of
// event never builds the others (bench/startup.ts). The built app is kept for the isolate's life.
let app: Promise<ReturnType<typeof buildApp>> | undefined;
function api() {
  app ??= import("./api").then(
    (m) => m.buildApp(),
    (err) => {
      app = undefined;
      throw err;
    },
  );
  return app;
}

export default {
  fetch: async (request, env, ctx) => {
    // Before anything else (the app's first load included): response times start here.
    markArrival(request);
    return (await api()).fetch(request, env, ctx);
  },
  async queue(batch, env, ctx) {
    await (await import("./consumers")).consume(batch, env, ctx);
  },
  async scheduled(controller, env, ctx) {
    await (await import("./monitoring/cron")).runScheduled(controller, env, ctx);
  },
} satisfies ExportedHandler<RawEnv>;
