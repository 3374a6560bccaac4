import { spawnSync } from "node:child_process";
import pg from "pg";
import { startBenchWorker } from "./analytics-worker.ts";
const url = "postgres://postgres@127.0.0.1:5432/chatedge_bench";
const c = new pg.Client({ connectionString: url }); await c.connect();
await c.query("insert into dead_letters (message_id, queue, reason, error, body, tenant_id, event_id, attempts) values ('tmp-1','chatedge-analytics','exhausted','x','{\"a\":1}','tmp-replay',null,11), ('tmp-2','chatedge-analytics','exhausted','x','{\"a\":2}','tmp-replay',null,11) on conflict do nothing");
const w = await startBenchWorker(url);
const env = { ...process.env, ADMIN_TOKEN: w.adminToken };
for (const args of [["--list", "--tenant", "tmp-replay"], ["--tenant", "tmp-replay", "--limit", "1", "--all"], ["--list", "--tenant", "tmp-replay"]]) {
  const r = spawnSync("node", ["local/replay-dead-letters.ts", "--url", w.url, ...args], { encoding: "utf8", env });
  console.log(r.status, r.stdout, r.stderr);
}
await w.stop();
await c.query("delete from dead_letters where tenant_id = 'tmp-replay'"); await c.end();
