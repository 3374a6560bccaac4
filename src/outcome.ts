/**
 * The one protocol of every Durable Object's RPC methods: a call answers its value, or the typed
 * reason it does not fit. Expected refusals are values, not exceptions, so they cross RPC typed
 * (RPC keeps only an error's message) and nothing logs them as uncaught errors; anything thrown
 * is a failure of the object itself.
 */
export type Outcome<T, C extends string> = { ok: true; value: T } | { ok: false; code: C; message: string };

/** A call that does not fit, thrown inside an object; `guard` answers it, so it never crosses RPC. */
export class Rejection<C extends string> extends Error {
  constructor(
    readonly code: C,
    readonly detail: string,
  ) {
    super(detail);
    this.name = "Rejection";
  }
}

/** Runs one RPC method: its value, or the Rejection it threw as a failed Outcome. */
export async function guard<T, C extends string>(run: () => T | Promise<T>): Promise<Outcome<T, C>> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    if (err instanceof Rejection) return { ok: false, code: err.code as C, message: err.detail };
    throw err;
  }
}
