/**
 * local/tools.ts's child process (`npm run dev` runs the example tool that way): a port taken before
 * workerd binds it is reported as PortInUseError, which local/dev.ts answers by trying another port
 * (with TOOL_PORT=0) instead of failing the whole stack.
 */
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { listen } from "../../local/ports.ts";
import { PortInUseError, spawnOrderStatusTool } from "../../local/tools.ts";

describe("the example tool in a child process", () => {
  it("reports a taken port as PortInUseError, and serves on a free one", async () => {
    const holder = createServer();
    const taken = await listen(holder, 0, "127.0.0.1");
    try {
      const refused = await spawnOrderStatusTool({ secret: "s3cret", port: taken }).catch((e) => e);
      expect(refused).toBeInstanceOf(PortInUseError);
      expect((refused as PortInUseError).port).toBe(taken);
    } finally {
      await new Promise((r) => holder.close(r));
    }
    const tool = await spawnOrderStatusTool({ secret: "s3cret", port: taken });
    try {
      expect(tool.port).toBe(taken);
      // Unsigned: the tool checks the platform's signature before anything else.
      const res = await fetch(tool.url, { method: "POST", body: "{}" });
      expect(res.status).toBe(401);
    } finally {
      await tool.close();
    }
  }, 60_000);
});
