// Embedded PostgreSQL for local development when no real server is around: PGlite persisted on disk,
// spoken to over the Postgres wire protocol. It serves one session at a time, so callers put
// startRelay({ serialize: true }) in front of it.
import { connect } from "node:net";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export type PgliteServer = { port: number; close(): Promise<void> };

/** Opens (or creates) the PGlite database in dataDir and serves it on host:port (0 = random). */
export async function startPglite(opts: {
  dataDir: string;
  port?: number;
  host?: string;
}): Promise<PgliteServer> {
  const host = opts.host ?? "127.0.0.1";
  const db = await PGlite.create(opts.dataDir);
  // maxConnections 1: with more, concurrent sessions interleave inside PGlite and corrupt each other.
  const server = new PGLiteSocketServer({ db, host, port: opts.port ?? 0, maxConnections: 1 });
  try {
    await server.start();
  } catch (err) {
    await db.close();
    throw err;
  }
  const conn = server.getServerConn();
  const port = Number(conn.slice(conn.lastIndexOf(":") + 1));
  let closed: Promise<void> | undefined;
  return {
    port,
    close() {
      closed ??= (async () => {
        await server.stop();
        await db.close();
      })();
      return closed;
    },
  };
}

/** True when something at host:port answers a Postgres SSLRequest within timeoutMs; never throws. */
export function postgresAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
    socket.on("connect", () => {
      // SSLRequest: length 8, code 80877103. Any Postgres answers with a single 'S' or 'N' byte.
      const req = Buffer.alloc(8);
      req.writeInt32BE(8, 0);
      req.writeInt32BE(80877103, 4);
      socket.write(req);
    });
    socket.once("data", (chunk: Buffer) => done(chunk[0] === 0x53 || chunk[0] === 0x4e));
  });
}
