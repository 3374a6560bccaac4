/**
 * The shape every background entry point shares (queue batches, the cron trigger): validate the
 * environment, build the services, run, and close the database in `waitUntil` whatever happened.
 * `fetch` does the same in `newApp()`'s first middleware.
 */
import { retryDelaySeconds } from "./analytics/consumer";
import { loadEnv, type RawEnv } from "./env";
import { newServices, type Services } from "./services";

/**
 * Runs `work` with the services of a valid environment and always closes their database pool.
 * An invalid environment is logged with `what` (what is not done) and handed to `onInvalidEnv`.
 */
export async function runInBackground(
  raw: RawEnv,
  ctx: ExecutionContext,
  what: string,
  work: (svc: Services) => Promise<void>,
  onInvalidEnv: () => void = () => {},
): Promise<void> {
  const loaded = loadEnv(raw);
  if (!loaded.ok) {
    console.error(JSON.stringify({ msg: `environment invalid; ${what}`, problems: loaded.problems }));
    onInvalidEnv();
    return;
  }
  const svc = newServices(loaded.env);
  try {
    await work(svc);
  } finally {
    ctx.waitUntil(svc.dbh.close());
  }
}

/**
 * A queue handler's frame: `runInBackground` for one batch; with an invalid environment every
 * message comes back later with backoff, since nothing was done with it.
 */
export function consumeInBackground(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
  work: (svc: Services) => Promise<void>,
): Promise<void> {
  return runInBackground(raw, ctx, `batch of ${batch.queue} retried`, work, () => retryBatch(batch));
}

/** Hands every message of a batch back to its queue with backoff: nothing was done with them. */
export function retryBatch(batch: MessageBatch<unknown>): void {
  for (const m of batch.messages) m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
}
