/**
 * A module an object needs synchronously but the isolate should not evaluate at start (zod's
 * schemas: bench/startup.ts): a Durable Object awaits `load()` in its constructor's
 * blockConcurrencyWhile, so every method it runs afterwards can `get()` it. Loaded once per isolate.
 */
export function preloaded<M>(importer: () => Promise<M>): { load(): Promise<M>; get(): M } {
  let loaded: M | undefined;
  return {
    async load() {
      loaded ??= await importer();
      return loaded;
    },
    get() {
      if (loaded === undefined) throw new Error("a preloaded module was used before its load()");
      return loaded;
    },
  };
}
