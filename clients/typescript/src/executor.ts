// The workflow platform's email node, in the seed's shape: parameters in, a success or
// error object out, never an exception for a failed send.

import { SluiceClient, type SluiceClientOptions } from "./client.js";
import { SluiceError } from "./errors.js";
import type { Attachment, SendRequest } from "./types.js";

/** An attachment as workflow nodes give them (nodemailer's spelling). */
export interface EmailNodeAttachment {
  filename: string;
  /** Text, or bytes; a string is UTF-8 text unless `encoding` is `base64`. */
  content: string | Uint8Array;
  /** Default `application/octet-stream`. */
  contentType?: string;
  encoding?: "base64" | "utf8" | "utf-8";
}

/** The node's parameters. `to`, `subject` or `template`, and `body` or `template` are required. */
export interface EmailNodeParams {
  /** One address, a comma-separated list, or a list. */
  to?: string | string[];
  subject?: string;
  /** The HTML body. */
  body?: string;
  /** A stored or built-in template, rendered with `data`. */
  template?: string;
  from?: string;
  cc?: string | string[];
  bcc?: string | string[];
  attachments?: EmailNodeAttachment[];
  /** The client's retries after the first try (default 3); not sent to the server. */
  retryAttempts?: number | string;
  data?: Record<string, unknown>;
}

export interface EmailNodeSuccess {
  status: "success";
  messageId: number;
  to: string[];
  attempts: number;
  /** ISO 8601, UTC. */
  timestamp: string;
  /** Milliseconds. */
  duration: number;
}

export interface EmailNodeFailure {
  status: "error";
  error: string;
  /** The seed's one error code. */
  errorCode: "SMTP_SEND_ERROR";
  /** Which failure: the SluiceError's code. */
  code: string;
  retryable: boolean;
  attempts: number;
  timestamp: string;
  duration: number;
}

export type EmailNodeResult = EmailNodeSuccess | EmailNodeFailure;

export interface EmailNodeOptions extends Partial<SluiceClientOptions> {
  /** A client to send with; else one is made from `baseUrl` and `apiKey` (or the
   * `SLUICE_URL` and `SLUICE_API_KEY` environment variables). */
  client?: SluiceClient;
}

/** Runs the email node: sends through Sluice and answers in the seed's output shape. */
export async function executeEmailNode(
  params: EmailNodeParams,
  options: EmailNodeOptions = {},
): Promise<EmailNodeResult> {
  const clock = options.clock ?? Date.now;
  const started = clock();
  const finish = () => {
    const now = clock();
    return { timestamp: new Date(now).toISOString(), duration: now - started };
  };
  try {
    const to = addressList(params.to);
    const request = toSendRequest(params, to);
    const retryAttempts = readRetryAttempts(params.retryAttempts);
    const client = options.client ?? clientFrom(options);
    const sent = await client.send(request, retryAttempts === undefined ? {} : { retryAttempts });
    return { status: "success", messageId: sent.id, to, attempts: sent.attempts, ...finish() };
  } catch (error) {
    const failure =
      error instanceof SluiceError
        ? error
        : new SluiceError({
            code: "internal_error",
            message: error instanceof Error ? error.message : String(error),
            retryable: false,
            status: null,
          });
    return {
      status: "error",
      error: failure.message,
      errorCode: "SMTP_SEND_ERROR",
      code: failure.code,
      retryable: failure.retryable,
      attempts: failure.attempts,
      ...finish(),
    };
  }
}

function clientFrom(options: EmailNodeOptions): SluiceClient {
  const baseUrl = options.baseUrl ?? process.env.SLUICE_URL;
  const apiKey = options.apiKey ?? process.env.SLUICE_API_KEY;
  if (!baseUrl || !apiKey) {
    throw SluiceError.missingParameter("no Sluice to send through: give baseUrl and apiKey (or SLUICE_URL and SLUICE_API_KEY)");
  }
  return new SluiceClient({ ...options, baseUrl, apiKey });
}

function toSendRequest(params: EmailNodeParams, to: string[]): SendRequest {
  if (to.length === 0) {
    throw SluiceError.missingParameter("missing parameter: to");
  }
  if (!params.subject && !params.template) {
    throw SluiceError.missingParameter("missing parameter: subject (or template)");
  }
  if (!params.body && !params.template) {
    throw SluiceError.missingParameter("missing parameter: body (or template)");
  }
  const request: SendRequest = { to };
  if (params.from) request.from = params.from;
  if (params.subject) request.subject = params.subject;
  if (params.template) {
    request.template = params.template;
    if (params.data !== undefined) request.data = params.data;
  } else {
    request.html = params.body;
  }
  const cc = addressList(params.cc);
  if (cc.length > 0) request.cc = cc;
  const bcc = addressList(params.bcc);
  if (bcc.length > 0) request.bcc = bcc;
  if (params.attachments && params.attachments.length > 0) {
    request.attachments = params.attachments.map(toAttachment);
  }
  return request;
}

function toAttachment(attachment: EmailNodeAttachment, index: number): Attachment {
  if (!attachment || !attachment.filename || attachment.content === undefined || attachment.content === null) {
    throw SluiceError.missingParameter(`missing parameter: attachments[${index}] needs filename and content`);
  }
  const content =
    typeof attachment.content === "string"
      ? Buffer.from(attachment.content, attachment.encoding === "base64" ? "base64" : "utf8")
      : attachment.content;
  return {
    filename: attachment.filename,
    contentType: attachment.contentType ?? "application/octet-stream",
    content,
  };
}

function readRetryAttempts(value: number | string | undefined): number | undefined {
  if (value === undefined || value === "") {
    return undefined;
  }
  const count = typeof value === "string" ? Number(value) : value;
  if (!Number.isInteger(count) || count < 0) {
    throw SluiceError.missingParameter(`retryAttempts must be a whole number from 0, not ${String(value)}`);
  }
  return count;
}

/**
 * Addresses from a list or a comma-separated string; commas inside quotes (a display
 * name) or angle brackets do not split.
 */
export function addressList(value: string | string[] | undefined): string[] {
  if (value === undefined || value === null) {
    return [];
  }
  const items = Array.isArray(value) ? value : splitAddresses(String(value));
  return items.map((item) => item.trim()).filter((item) => item.length > 0);
}

function splitAddresses(text: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  let angle = false;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    else if (char === "<" && !quoted) angle = true;
    else if (char === ">" && !quoted) angle = false;
    if (char === "," && !quoted && !angle) {
      parts.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}
