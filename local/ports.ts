// Small networking helpers shared by the local dev servers.
import type { Server } from "node:net";
import { createServer } from "node:net";

export type Target = { host: string; port: number };

/** Canonical "host:port" form, bracketing IPv6 hosts, so targets compare as plain strings. */
export function targetKey(t: Target): string {
  return t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/** Listens and resolves with the bound port, so callers can pass port 0 and learn the real one. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const addr = server.address();
      if (addr === null || typeof addr === "string") reject(new Error("server has no TCP address"));
      else resolve(addr.port);
    });
  });
}

/** Asks the OS for a currently free TCP port (racy by nature; fine for local tooling). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = createServer();
  const port = await listen(server, 0, host);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
