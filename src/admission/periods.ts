/**
 * Calendar periods in a tenant's time zone: budgets reset at local midnight (daily cost) and at
 * the local start of the month (monthly tokens). Keys are "YYYY-MM-DD" and "YYYY-MM".
 */

// Isolate-wide: one formatter per time zone (creating one costs far more than using it); bounded
// by the number of IANA zones (~600).
const formatters = new Map<string, Intl.DateTimeFormat>();
// The local day only changes on a minute boundary (every zone offset is a whole number of
// minutes), so the last answer per zone is reused for the rest of its minute.
const lastDay = new Map<string, { minute: number; day: string }>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(tz, f);
  }
  return f;
}

interface Parts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function partsOf(ms: number, tz: string): Parts {
  const out: Record<string, number> = {};
  for (const p of formatter(tz).formatToParts(ms)) {
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  return {
    year: out.year ?? 1970,
    month: out.month ?? 1,
    day: out.day ?? 1,
    hour: out.hour ?? 0,
    minute: out.minute ?? 0,
    second: out.second ?? 0,
  };
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** True when `tz` is an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  if (formatters.has(tz)) return true;
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

/** The local date "YYYY-MM-DD" of `ms` in `tz`. */
export function localDay(ms: number, tz: string): string {
  const minute = Math.floor(ms / 60_000);
  const hit = lastDay.get(tz);
  if (hit && hit.minute === minute) return hit.day;
  const p = partsOf(ms, tz);
  const day = `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
  lastDay.set(tz, { minute, day });
  return day;
}

/** The month "YYYY-MM" a day key belongs to. */
export const monthOf = (day: string): string => day.slice(0, 7);

/** The UTC instant of local wall-clock time `y-m-d 00:00` in `tz` (fields may overflow, as in Date.UTC). */
function localMidnight(y: number, m: number, d: number, tz: string): number {
  const wall = Date.UTC(y, m - 1, d);
  // Offset = local wall time minus UTC; probe twice so a DST change near midnight lands right.
  let t = wall - offsetAt(wall, tz);
  const second = wall - offsetAt(t, tz);
  if (second !== t) t = second;
  return t;
}

function offsetAt(ms: number, tz: string): number {
  const p = partsOf(ms, tz);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** When the local day containing `ms` ends (the next local midnight), as a UTC instant. */
export function nextDayStart(ms: number, tz: string): number {
  const p = partsOf(ms, tz);
  return localMidnight(p.year, p.month, p.day + 1, tz);
}

/** When the local month containing `ms` ends, as a UTC instant. */
export function nextMonthStart(ms: number, tz: string): number {
  const p = partsOf(ms, tz);
  return localMidnight(p.year, p.month + 1, 1, tz);
}

/** The `n` local dates ending with `day`, newest first ("YYYY-MM-DD"; pure calendar arithmetic). */
export function lastDays(day: string, n: number): string[] {
  const [y, m, d] = day.split("-").map(Number) as [number, number, number];
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(new Date(Date.UTC(y, m - 1, d - i)).toISOString().slice(0, 10));
  return out;
}
