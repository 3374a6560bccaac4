/**
 * Where a tenant may point a webhook. The worker POSTs to it, so a tenant-set URL must not turn the
 * platform into a proxy into private networks: it must be https on a public host. Plain http,
 * loopback, link-local, private and reserved addresses (IPv4 in any notation the URL parser
 * accepts, IPv6 including IPv4-mapped forms) and local names (`localhost`, `*.local`,
 * `*.internal`, single-label hosts) are refused. Outside production (`ENVIRONMENT` test or
 * development) only the scheme check (http or https) applies, so local fakes can receive webhooks.
 * The operator's own NOTIFY_WEBHOOK_URL is not a tenant setting and is never checked here.
 */
import type { Env } from "../env.ts";

/** Request fields that hold a tenant-set webhook URL, wherever they appear in a body. */
export const WEBHOOK_URL_FIELDS: ReadonlySet<string> = new Set(["webhook_url"]);

/** Whether tenant webhooks must be https on a public host: always, except in test and development. */
export function strictWebhookTargets(env: Pick<Env, "ENVIRONMENT">): boolean {
  return env.ENVIRONMENT === "production";
}

/** Names that only resolve inside a network (RFC 6761, RFC 6762, RFC 8375, common private zones). */
const LOCAL_SUFFIXES = [
  ".localhost",
  ".local",
  ".internal",
  ".localdomain",
  ".home.arpa",
  ".lan",
  ".intranet",
];

/** IPv4 ranges that are not public unicast (RFC 6890 and friends): [first octets, prefix length]. */
const V4_BLOCKED: [number, number][] = [
  [0x00000000, 8], // "this network"
  [0x0a000000, 8], // 10/8 private
  [0x64400000, 10], // 100.64/10 CGNAT
  [0x7f000000, 8], // loopback
  [0xa9fe0000, 16], // 169.254/16 link-local (cloud metadata)
  [0xac100000, 12], // 172.16/12 private
  [0xc0000000, 24], // 192.0.0/24 IETF protocol assignments
  [0xc0000200, 24], // 192.0.2/24 documentation
  [0xc0586300, 24], // 192.88.99/24 6to4 relay
  [0xc0a80000, 16], // 192.168/16 private
  [0xc6120000, 15], // 198.18/15 benchmarking
  [0xc6336400, 24], // 198.51.100/24 documentation
  [0xcb007100, 24], // 203.0.113/24 documentation
  [0xe0000000, 4], // multicast
  [0xf0000000, 4], // reserved, broadcast
];

function v4Number(host: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return parts.reduce((n, p) => n * 256 + p, 0);
}

function v4Blocked(n: number): boolean {
  return V4_BLOCKED.some(
    ([base, bits]) => Math.floor(n / 2 ** (32 - bits)) === Math.floor(base / 2 ** (32 - bits)),
  );
}

/** The eight 16-bit groups of an IPv6 literal (as the URL parser writes it, without brackets). */
function v6Groups(host: string): number[] | null {
  let text = host;
  const tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = v4Number(dotted[2] ?? "");
    if (n === null) return null;
    tail.push(Math.floor(n / 65536), n % 65536);
    text = dotted[1] === "::" ? "::" : (dotted[1] ?? "").replace(/:$/, "");
  }
  const [head = "", rest] = text.split("::");
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = [...(rest === undefined ? [] : parse(rest)), ...tail];
  const fill = 8 - left.length - right.length;
  if (rest === undefined ? fill !== 0 : fill < 0) return null;
  const groups = [...left, ...Array<number>(fill).fill(0), ...right];
  return groups.some((g) => Number.isNaN(g) || g < 0 || g > 0xffff) ? null : groups;
}

/** Whether an IPv6 address is anything but global unicast to a public IPv4 or IPv6 host. */
function v6Blocked(g: number[]): boolean {
  const [a = 0, b = 0] = g;
  const embedded = (hi: number, lo: number) => v4Blocked(hi * 65536 + lo);
  // ::/96 (unspecified, loopback, IPv4-compatible), ::ffff:0:0/96 (IPv4-mapped), 64:ff9b::/96 (NAT64):
  // judged by the IPv4 address inside.
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0 || g[5] === 0xffff)) {
    if (g[5] === 0 && g[6] === 0) return true; // ::, ::1 and the rest of ::/112
    return embedded(g[6] ?? 0, g[7] ?? 0);
  }
  if (a === 0x64 && b === 0xff9b && g.slice(2, 6).every((x) => x === 0))
    return embedded(g[6] ?? 0, g[7] ?? 0);
  if (a === 0x2002) return embedded(b, g[2] ?? 0); // 6to4 carries an IPv4 address
  if (a === 0x2001 && b === 0x0db8) return true; // documentation
  if (a === 0x2001 && b < 0x0200) return true; // 2001::/23 IETF special purpose (Teredo, ORCHID, ...)
  return (a & 0xe000) !== 0x2000; // only 2000::/3 is global unicast: fc00::/7, fe80::/10, ff00::/8 are out
}

/** Why a host is not public, or null when it is a public DNS name or a public IP address. */
function hostProblem(hostname: string): string | null {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[")) {
    const groups = v6Groups(host.slice(1, -1));
    if (!groups) return "an IPv6 address the platform cannot read";
    return v6Blocked(groups) ? "a loopback, link-local, private or reserved IPv6 address" : null;
  }
  // The URL parser already turned 2130706433, 0x7f.1 and 017700000001 into dotted decimal.
  const v4 = v4Number(host);
  if (v4 !== null) return v4Blocked(v4) ? "a loopback, link-local, private or reserved IPv4 address" : null;
  if (/^[0-9.]+$/.test(host) || /^0x/.test(host)) return "an IP address the platform cannot read";
  if (host === "localhost" || LOCAL_SUFFIXES.some((s) => host.endsWith(s))) return "a local host name";
  if (!host.includes(".")) return "a host name without a domain";
  return null;
}

/**
 * Why `raw` may not be a tenant's webhook, or null when it may. `strict` (production) asks for
 * https on a public host; otherwise only an http(s) URL is asked for.
 */
export function webhookTargetProblem(raw: string, strict: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be an https URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an https URL";
  if (!strict) return null;
  if (url.protocol !== "https:") return "must be an https URL (plain http is refused)";
  const host = hostProblem(url.hostname);
  return host ? `must be on a public host, not ${host}` : null;
}
