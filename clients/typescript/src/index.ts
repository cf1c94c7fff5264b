// @sluice/client: Sluice's HTTP send API for Node applications and workflow nodes.

export { SluiceClient, type SluiceClientOptions } from "./client.js";
export { SluiceError, type ClientErrorCode, type SluiceErrorFields } from "./errors.js";
export {
  addressList,
  executeEmailNode,
  type EmailNodeAttachment,
  type EmailNodeFailure,
  type EmailNodeOptions,
  type EmailNodeParams,
  type EmailNodeResult,
  type EmailNodeSuccess,
} from "./executor.js";
export {
  DEFAULT_RETRY_ATTEMPTS,
  FIRST_DELAY_MS,
  MAX_DELAY_MS,
  isRetryableStatus,
  parseRetryAfter,
  retryDelayMs,
} from "./retry.js";
export type { Attachment, Recipients, SendOptions, SendRequest, SendResult } from "./types.js";
