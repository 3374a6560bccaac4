/**
 * Calls `fn` until it stops throwing and answers what it returned; after `timeoutMs` it throws
 * `fn`'s last error. For what lands off the response path (queue consumers, `waitUntil` work),
 * which a test cannot drive directly: the assertions that must come true go inside `fn`.
 */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 15_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** `value` when it is there; otherwise a throw, so `eventually` asks again. */
export function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`no ${what} yet`);
  return value;
}
