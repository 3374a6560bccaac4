// The Node-side typecheck (tsconfig.node.json) reaches src/env.ts through bench/ and local/. The
// generated worker-configuration.d.ts would pull in the whole Worker (its binding types import
// src/index.ts), whose Workers-only APIs do not typecheck against Node's typings, so here the
// bindings are left untyped; the Worker's own scopes (tsconfig.json, test/) check their use.
interface WranglerEnv {
  // biome-ignore lint/suspicious/noExplicitAny: see above; typed in the Worker's scopes.
  readonly [binding: string]: any;
}
