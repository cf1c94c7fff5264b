// The retry policy of the workflow platform's seed, as pure functions: which answers are
// worth another try, and how long to wait before it. No clock is read here.

/** The first delay between tries, in milliseconds. */
export const FIRST_DELAY_MS = 1_000;
/** No wait between tries is longer than this, whatever the server's Retry-After says. */
export const MAX_DELAY_MS = 10_000;
/** Retries after the first try when the caller names none. */
export const DEFAULT_RETRY_ATTEMPTS = 3;

/** HTTP statuses that are worth another try of the same send (with the same key). */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504, 507]);

/**
 * Whether an HTTP error answer is worth another try: 408, 429, 500, 502, 503, 504, 507,
 * and 409 only when the same idempotency key is still being processed.
 */
export function isRetryableStatus(status: number, code: string): boolean {
  if (status === 409) {
    return code === "idempotency_key_in_use";
  }
  return RETRYABLE_STATUSES.has(status);
}

/**
 * The wait before retry number `retry` (0 for the wait after the first try):
 * 1 s, 2 s, 4 s, 8 s, then 10 s. A `Retry-After` longer than that is used instead, still
 * capped at 10 s.
 */
export function retryDelayMs(retry: number, retryAfterMs: number | null = null): number {
  const exponent = Math.min(Math.max(0, Math.floor(retry)), 30);
  const scheduled = Math.min(FIRST_DELAY_MS * 2 ** exponent, MAX_DELAY_MS);
  const wanted = retryAfterMs !== null && retryAfterMs > scheduled ? retryAfterMs : scheduled;
  return Math.min(wanted, MAX_DELAY_MS);
}

/**
 * A `Retry-After` header in milliseconds: delay-seconds, or an HTTP date measured from
 * `nowMs`. Null when absent or unreadable; never negative.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null) {
    return null;
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    return Number(text) * 1_000;
  }
  const at = Date.parse(text);
  if (Number.isNaN(at)) {
    return null;
  }
  return Math.max(0, at - nowMs);
}
