// What a send takes and gives back.

/** One address (`a@b` or `Name <a@b>`) or a list. */
export type Recipients = string | string[];

export interface Attachment {
  filename: string;
  /** e.g. `application/pdf`. */
  contentType: string;
  /** The bytes, or a string holding them base64-encoded (as the API takes them). */
  content: Uint8Array | string;
}

/** The fields of `POST /api/v1/send`, in TypeScript's spelling. */
export interface SendRequest {
  /** Defaults to the account's email; its domain must be a verified domain of the account. */
  from?: string;
  to: Recipients;
  cc?: Recipients;
  /** In the envelope only, never in a header. */
  bcc?: Recipients;
  replyTo?: string;
  /** With a template, replaces the template's subject. */
  subject?: string;
  text?: string;
  html?: string;
  /** A stored or built-in template's name, instead of text/html. */
  template?: string;
  /** The template's variables. */
  data?: Record<string, unknown>;
  attachments?: Attachment[];
  /** Extra headers; those Sluice writes itself are refused. */
  headers?: Record<string, string>;
  tags?: string[];
  /** Limits sends per key for the account (the server's `rate_limit_key`). */
  rateLimitKey?: string;
  /**
   * The server's delivery retries after its first delivery attempt (`retry_attempts`).
   * Not the client's retries of this request: see {@link SendOptions.retryAttempts}.
   */
  deliveryRetryAttempts?: number;
}

export interface SendOptions {
  /**
   * Sent as `Idempotency-Key` on every try of this send (1 to 255 visible ASCII
   * characters); a random UUID v4 when not given.
   */
  idempotencyKey?: string;
  /** Retries after the first try; the client's default (3) when not given. */
  retryAttempts?: number;
  /** `sync`: the server answers with the upstream's verdict (`?mode=sync`). */
  mode?: "async" | "sync";
}

export interface SendResult {
  /** The message's id at Sluice. */
  id: number;
  /** `queued` (202) or `delivered` (200, sync mode). */
  status: string;
  /** Tries made, 1 when the first one succeeded. */
  attempts: number;
  /** True when the server answered from its memory of this idempotency key. */
  replayed: boolean;
  idempotencyKey: string;
}
