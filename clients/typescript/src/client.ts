// SluiceClient: POST /api/v1/send with the seed's retry policy and an idempotency key
// per logical send, so a retried send is never sent twice.

import { randomUUID } from "node:crypto";

import { SluiceError } from "./errors.js";
import { DEFAULT_RETRY_ATTEMPTS, isRetryableStatus, parseRetryAfter, retryDelayMs } from "./retry.js";
import type { Attachment, Recipients, SendOptions, SendRequest, SendResult } from "./types.js";

export interface SluiceClientOptions {
  /** Where Sluice's API listens, e.g. `http://127.0.0.1:2580` (a trailing `/api/v1` is fine). */
  baseUrl: string;
  /** An API key of the account that sends. */
  apiKey: string;
  /** Retries after the first try of a send (default 3). */
  retryAttempts?: number;
  /** How long one try may take, answer body included (default 30 s). */
  timeoutMs?: number;
  /** Milliseconds since the epoch; read for HTTP-date `Retry-After` values. */
  clock?: () => number;
  /** Waits between tries; tests pass one that records instead of sleeping. */
  sleep?: (ms: number) => Promise<void>;
  /** Node's global fetch unless given. */
  fetch?: typeof fetch;
  /** Makes the idempotency key of a send that names none (default: random UUID v4). */
  newIdempotencyKey?: () => string;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** A single try's outcome: a result, or an error that may be retried. */
type Try = { ok: true; result: Omit<SendResult, "attempts" | "idempotencyKey"> } | { ok: false; error: SluiceError };

export class SluiceClient {
  private readonly sendUrl: string;
  private readonly apiKey: string;
  private readonly retryAttempts: number;
  private readonly timeoutMs: number;
  private readonly clock: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly fetch: typeof fetch;
  private readonly newIdempotencyKey: () => string;

  constructor(options: SluiceClientOptions) {
    if (!options.baseUrl) {
      throw SluiceError.missingParameter("baseUrl is required");
    }
    if (!options.apiKey) {
      throw SluiceError.missingParameter("apiKey is required");
    }
    const base = options.baseUrl.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
    this.sendUrl = `${base}/api/v1/send`;
    this.apiKey = options.apiKey;
    this.retryAttempts = checkRetryAttempts(options.retryAttempts ?? DEFAULT_RETRY_ATTEMPTS);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.fetch = options.fetch ?? globalThis.fetch;
    this.newIdempotencyKey = options.newIdempotencyKey ?? randomUUID;
  }

  /**
   * Sends one message. Retryable failures are tried again (the same body and the same
   * `Idempotency-Key`) after 1 s, 2 s, 4 s, ... capped at 10 s; others throw at once.
   * @throws {SluiceError} with `retryable`, `status`, `code` and `attempts`.
   */
  async send(request: SendRequest, options: SendOptions = {}): Promise<SendResult> {
    const body = JSON.stringify(toWire(request));
    const retries = checkRetryAttempts(options.retryAttempts ?? this.retryAttempts);
    const idempotencyKey = options.idempotencyKey ?? this.newIdempotencyKey();
    if (!IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new SluiceError({
        code: "invalid_idempotency_key",
        message: "the idempotency key must be 1 to 255 visible ASCII characters",
        retryable: false,
        status: null,
      });
    }
    const url = options.mode === undefined ? this.sendUrl : `${this.sendUrl}?mode=${options.mode}`;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.tryOnce(url, body, idempotencyKey);
      if (outcome.ok) {
        return { ...outcome.result, attempts: attempt, idempotencyKey };
      }
      const error = outcome.error;
      error.attempts = attempt;
      error.idempotencyKey = idempotencyKey;
      if (!error.retryable || attempt > retries) {
        throw error;
      }
      await this.sleep(retryDelayMs(attempt - 1, error.retryAfterMs));
    }
  }

  private async tryOnce(url: string, body: string, idempotencyKey: string): Promise<Try> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    try {
      const response = await this.fetch(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${this.apiKey}`,
          "content-type": "application/json",
          accept: "application/json",
          "idempotency-key": idempotencyKey,
        },
        body,
        signal: abort.signal,
      });
      const text = await response.text();
      return this.readAnswer(response, text);
    } catch (cause) {
      const timedOut = abort.signal.aborted;
      return {
        ok: false,
        error: new SluiceError({
          code: timedOut ? "timeout" : "network_error",
          message: timedOut
            ? `no answer from Sluice within ${this.timeoutMs} ms`
            : `no answer from Sluice: ${describeNetworkError(cause)}`,
          retryable: true,
          status: null,
          cause,
        }),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  private readAnswer(response: Response, text: string): Try {
    const status = response.status;
    const parsed = parseJson(text);
    if (status >= 200 && status < 300) {
      const answer = parsed as { id?: unknown; status?: unknown } | undefined;
      if (typeof answer?.id !== "number" || typeof answer.status !== "string") {
        return {
          ok: false,
          error: new SluiceError({
            code: "invalid_response",
            message: `HTTP ${status} without the send API's {"id","status"} body`,
            retryable: false,
            status,
          }),
        };
      }
      const replayed = response.headers.get("idempotent-replayed")?.trim().toLowerCase() === "true";
      return { ok: true, result: { id: answer.id, status: answer.status, replayed } };
    }
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), this.clock());
    const failure = (parsed as { error?: { code?: unknown; message?: unknown; request_id?: unknown } } | undefined)
      ?.error;
    if (typeof failure?.code !== "string") {
      return {
        ok: false,
        error: new SluiceError({
          code: "invalid_response",
          message: `HTTP ${status} without Sluice's JSON error body`,
          retryable: isRetryableStatus(status, ""),
          status,
          retryAfterMs,
        }),
      };
    }
    const message = typeof failure.message === "string" ? failure.message : failure.code;
    return {
      ok: false,
      error: new SluiceError({
        code: failure.code,
        message: `${status} ${failure.code}: ${message}`,
        retryable: isRetryableStatus(status, failure.code),
        status,
        retryAfterMs,
        requestId: typeof failure.request_id === "string" ? failure.request_id : null,
      }),
    };
  }
}

function checkRetryAttempts(value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw SluiceError.missingParameter(`retryAttempts must be a whole number from 0, not ${value}`);
  }
  return value;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** What failed under fetch's "fetch failed": the socket error's code and text. */
function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const parts = [cause?.code, cause?.message].filter((part): part is string => typeof part === "string");
  if (parts.length > 0) {
    return parts.join(" ");
  }
  return error instanceof Error ? error.message : String(error);
}

function hasItems(recipients: Recipients | undefined): boolean {
  return Array.isArray(recipients) ? recipients.length > 0 : Boolean(recipients);
}

/** The request in the API's spelling; missing parameters are refused before any call. */
function toWire(request: SendRequest): Record<string, unknown> {
  if (!hasItems(request.to)) {
    throw SluiceError.missingParameter("to is required");
  }
  if (!request.template && !request.subject) {
    throw SluiceError.missingParameter("subject (or a template) is required");
  }
  if (!request.template && !request.text && !request.html) {
    throw SluiceError.missingParameter("text or html (or a template) is required");
  }
  const wire: Record<string, unknown> = {
    from: request.from,
    to: request.to,
    cc: request.cc,
    bcc: request.bcc,
    reply_to: request.replyTo,
    subject: request.subject,
    text: request.text,
    html: request.html,
    template: request.template,
    data: request.data,
    attachments: request.attachments?.map(attachmentToWire),
    headers: request.headers,
    tags: request.tags,
    rate_limit_key: request.rateLimitKey,
    retry_attempts: request.deliveryRetryAttempts,
  };
  for (const key of Object.keys(wire)) {
    if (wire[key] === undefined) {
      delete wire[key];
    }
  }
  return wire;
}

function attachmentToWire(attachment: Attachment): Record<string, string> {
  const content =
    typeof attachment.content === "string"
      ? attachment.content
      : Buffer.from(attachment.content).toString("base64");
  return { filename: attachment.filename, content_type: attachment.contentType, content };
}
