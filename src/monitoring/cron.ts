/** The cron trigger: evaluates alert rules and prunes old queue-lag rows. */

import { runInBackground } from "../background.ts";
import type { RawEnv } from "../env.ts";
import { pruneOperatorSockets } from "../handoff/operator-sockets";
import { sweepRetention } from "../privacy/retention.ts";
import { evaluateAlerts, pruneQueueLag } from "./evaluate.ts";

export function runScheduled(
  controller: ScheduledController,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  return runInBackground(raw, ctx, "alerts not evaluated", async ({ env, dbh }) => {
    const report = await evaluateAlerts(env, dbh.db, controller.scheduledTime);
    await pruneQueueLag(dbh.db, controller.scheduledTime);
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
    // After the alerts: a slow sweep must not delay them. Bounded per run (src/privacy/retention.ts).
    const retention = await sweepRetention(dbh.db, env, controller.scheduledTime);
    console.log(JSON.stringify({ msg: "retention swept", ...retention }));
    const sockets = await pruneOperatorSockets(dbh.db, controller.scheduledTime);
    if (sockets > 0) console.log(JSON.stringify({ msg: "operator socket rows pruned", rows: sockets }));
  });
}
