/**
 * `expires-at` timestamps (PEP 694 "Response Body"): RFC 3339, UTC with `Z`, whole seconds.
 */

/** Formats `date` as `2030-08-01T12:00:00Z`, dropping (truncating) milliseconds. */
export function formatExpiresAt(date: Date): string {
  const t = date.getTime();
  // toISOString switches to a 6-digit `+YYYYYY` year outside 0000-9999, which RFC 3339 forbids.
  if (!Number.isFinite(t) || date.getUTCFullYear() < 0 || date.getUTCFullYear() > 9999) {
    throw new RangeError(`formatExpiresAt: date out of RFC 3339 range: ${String(date)}`);
  }
  return `${date.toISOString().slice(0, 19)}Z`;
}

const EXPIRES_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/**
 * True for exactly the shape the PEP requires, on a real calendar date. Leap seconds (`:60`)
 * are refused: JavaScript dates cannot represent them, and servers never emit them.
 */
export function isValidExpiresAt(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = EXPIRES_RE.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const days = [31, isLeap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  return days !== undefined && d >= 1 && d <= days && h <= 23 && mi <= 59 && se <= 59;
}
