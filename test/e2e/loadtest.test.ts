/**
 * The load test at CI size: the real worker under the Miniflare API with its queue consumers, 10
 * tenants, 100 concurrent visitors for 15 s, then every book check (bench/loadtest/checks.ts): no limit
 * exceeded, tokens and cost equal in replies, Postgres and the gates, every ended conversation in
 * Postgres exactly once. `npm run loadtest` runs the full size (50 tenants, 1,000 visitors, 60 s).
 */
import { describe, expect, it } from "vitest";
import { runLoadtest } from "../../bench/loadtest/main.ts";
import { formatReport } from "../../bench/loadtest/report.ts";
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from "../local-services.ts";

describe("load test (CI size)", () => {
  it("holds every limit and balances the books under concurrent conversations", async () => {
    const report = await runLoadtest({
      tenants: 10,
      visitors: 100,
      durationSec: 15,
      turnsPerConversation: 4,
      rampUpSec: 3,
      postgresUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      drainTimeoutSec: 30,
    });
    // The report is the test's evidence: printed whether it passes or not.
    console.log(formatReport(report));
    for (const check of report.checks) expect(check, check.detail).toMatchObject({ pass: true });
    expect(report.load.errors).toMatchObject({ http5xx: 0, network: 0, unexpected4xx: 0 });
    expect(report.load.admitted).toBeGreaterThan(100);
    // The limit checks checked something: these refusals happen at any speed (a 2-per-minute
    // user limit, a handful of messages' worth of monthly tokens, a cap that refuses a second message).
    expect(Object.keys(report.load.refusalsByLevel)).toEqual(
      expect.arrayContaining(["user", "budget:monthly_tokens", "budget:conversation_cost"]),
    );
    expect(report.load.conversations.ended).toBe(report.load.conversations.started);
  }, 150_000);
});
