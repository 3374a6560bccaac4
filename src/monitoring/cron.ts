/** The cron trigger: evaluates alert rules and prunes old queue-lag rows. */
import { openDb } from "../db/client.ts";
import { loadEnv, type RawEnv } from "../env.ts";
import { evaluateAlerts, pruneQueueLag } from "./evaluate.ts";

export async function runScheduled(
  controller: ScheduledController,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  const loaded = loadEnv(raw);
  if (!loaded.ok) {
    console.error(
      JSON.stringify({ msg: "environment invalid; alerts not evaluated", problems: loaded.problems }),
    );
    return;
  }
  const h = openDb(loaded.env);
  try {
    const report = await evaluateAlerts(loaded.env, h.db, controller.scheduledTime);
    await pruneQueueLag(h.db, controller.scheduledTime);
    console.log(
      JSON.stringify({
        msg: "alerts evaluated",
        cron: controller.cron,
        tenants: report.tenants,
        evaluated: report.evaluated,
        fired: report.fired.length,
        resolved: report.resolved.length,
      }),
    );
  } finally {
    ctx.waitUntil(h.close());
  }
}
