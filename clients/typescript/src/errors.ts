// The one error type of the client.

/**
 * Codes the client itself gives; every other code is the server's (`error.code` of its
 * JSON error body, e.g. `unauthorized`, `validation_failed`, `rate_limited`).
 */
export type ClientErrorCode =
  | "network_error"
  | "timeout"
  | "missing_parameter"
  | "invalid_response"
  | "invalid_idempotency_key";

export interface SluiceErrorFields {
  /** The server's error code, or one of {@link ClientErrorCode}. */
  code: string;
  message: string;
  /** Whether another try of the same send may succeed. */
  retryable: boolean;
  /** The HTTP status, or null when no answer arrived (or no call was made). */
  status: number | null;
  /** Tries made, 0 when the send was refused before any call. */
  attempts?: number;
  /** The server's `Retry-After`, in milliseconds, when it gave one. */
  retryAfterMs?: number | null;
  /** The server's request id, when it gave one. */
  requestId?: string | null;
  /** The idempotency key the tries carried. */
  idempotencyKey?: string | null;
  cause?: unknown;
}

/** A send that failed: `retryable` says whether trying again may help. */
export class SluiceError extends Error {
  override readonly name = "SluiceError";
  readonly code: string;
  readonly retryable: boolean;
  readonly status: number | null;
  attempts: number;
  readonly retryAfterMs: number | null;
  readonly requestId: string | null;
  idempotencyKey: string | null;

  constructor(fields: SluiceErrorFields) {
    super(fields.message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.code = fields.code;
    this.retryable = fields.retryable;
    this.status = fields.status;
    this.attempts = fields.attempts ?? 0;
    this.retryAfterMs = fields.retryAfterMs ?? null;
    this.requestId = fields.requestId ?? null;
    this.idempotencyKey = fields.idempotencyKey ?? null;
  }

  /** A parameter the send needs is missing or malformed: refused before any call. */
  static missingParameter(message: string): SluiceError {
    return new SluiceError({ code: "missing_parameter", message, retryable: false, status: null });
  }
}
