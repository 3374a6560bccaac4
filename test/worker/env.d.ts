// The tests' `env` (from "cloudflare:workers"): Cloudflare.Env has wrangler.jsonc's bindings from the
// generated worker-configuration.d.ts; this adds what vitest.config.ts passes to miniflare.
declare namespace Cloudflare {
  interface Env extends ReturnType<typeof import("../local-services").workerTestBindings> {}
}
