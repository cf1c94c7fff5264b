// The client and the executor against a live Sluice (started here unless SLUICE_URL is
// set): a captured send, idempotent replays, a retry after a dropped answer that sends
// once, and every error class the client tells apart. Waits are injected (FakeTime), so
// the schedule is checked without sleeping.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { SluiceClient, SluiceError, executeEmailNode, type SluiceClientOptions } from "../dist/index.js";
import { FakeTime, dropProxy, silentServer } from "./fakes.js";
import {
  type LiveSluice,
  api,
  capturedTo,
  externalSluice,
  freePort,
  messagesTo,
  startSluice,
  uniqueRecipient,
} from "./harness.js";

let sluice: LiveSluice;

before(async () => {
  sluice = externalSluice() ?? (await startSluice());
});

after(async () => {
  await sluice?.stop();
});

function clientFor(time: FakeTime, options: Partial<SluiceClientOptions> = {}): SluiceClient {
  return new SluiceClient({
    baseUrl: sluice.baseUrl,
    apiKey: sluice.apiKey,
    clock: time.clock,
    sleep: time.sleep,
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<SluiceError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SluiceError, `not a SluiceError: ${String(error)}`);
    return error;
  }
  assert.fail("the send succeeded");
}

describe("sending", () => {
  test("a message with cc, bcc and an attachment is captured as sent", async () => {
    const time = new FakeTime();
    const to = uniqueRecipient("ann");
    const bcc = uniqueRecipient("audit");
    const sent = await clientFor(time).send({
      from: "Billing <billing@example.com>",
      to: [to],
      cc: "carol@dest.test",
      bcc,
      subject: "Invoice 42",
      text: "Attached.",
      html: "<p>Attached.</p>",
      attachments: [{ filename: "invoice.csv", contentType: "text/csv", content: new TextEncoder().encode("n,1\n") }],
      tags: ["billing"],
    });
    assert.equal(sent.status, "queued");
    assert.equal(sent.attempts, 1);
    assert.equal(sent.replayed, false);
    assert.deepEqual(time.sleeps, []);
    const [message] = await capturedTo(sluice, to, 1);
    assert.equal(message.id, sent.id);
    assert.deepEqual([...message.rcpt_to].sort(), [to, "carol@dest.test", bcc].sort());
    const raw: string = await api(sluice, `/messages/${sent.id}/raw`);
    assert.match(raw, /^Subject: Invoice 42\r?$/m);
    assert.match(raw, /invoice\.csv/);
    assert.doesNotMatch(raw, new RegExp(bcc.replace(/[.]/g, "\\.")), "Bcc is in no header");
  });

  test("the same key and request again: the first answer, replayed, one message", async () => {
    const time = new FakeTime();
    const client = clientFor(time);
    const to = uniqueRecipient("replay");
    const request = { from: "app@example.com", to, subject: "Once", text: "only once" };
    const first = await client.send(request, { idempotencyKey: `replay-${to}` });
    const second = await client.send(request, { idempotencyKey: `replay-${to}` });
    assert.equal(first.replayed, false);
    assert.equal(second.replayed, true);
    assert.equal(second.id, first.id);
    await capturedTo(sluice, to, 1);
    assert.equal((await messagesTo(sluice, to)).length, 1);
  });

  test("a retry after a dropped answer does not send twice", async () => {
    const proxy = await dropProxy(Number(new URL(sluice.baseUrl).port), 1);
    try {
      const time = new FakeTime();
      const to = uniqueRecipient("dropped");
      const sent = await clientFor(time, { baseUrl: proxy.url }).send({
        from: "app@example.com",
        to,
        subject: "Dropped once",
        text: "the first answer never arrived",
      });
      assert.equal(proxy.dropped, 1, "the proxy dropped the first answer");
      assert.equal(sent.attempts, 2);
      assert.deepEqual(time.sleeps, [1000]);
      const captured = await capturedTo(sluice, to, 1);
      assert.equal(captured.length, 1, "sent once, not once per try");
      assert.equal(captured[0].id, sent.id);
      assert.equal(sent.replayed, true, "the second try was answered from the key");
    } finally {
      await proxy.close();
    }
  });
});

describe("error classes", () => {
  test("connection refused: network_error, retried on the schedule", async () => {
    const time = new FakeTime();
    const port = await freePort();
    const client = clientFor(time, { baseUrl: `http://127.0.0.1:${port}`, retryAttempts: 6 });
    const error = await rejection(client.send({ to: "a@dest.test", subject: "s", text: "t" }));
    assert.equal(error.code, "network_error");
    assert.match(error.message, /ECONNREFUSED/);
    assert.equal(error.status, null);
    assert.equal(error.retryable, true);
    assert.equal(error.attempts, 7);
    assert.deepEqual(time.sleeps, [1000, 2000, 4000, 8000, 10000, 10000]);
  });

  test("no answer in time: timeout, retried", async () => {
    const silent = await silentServer();
    try {
      const time = new FakeTime();
      const client = clientFor(time, { baseUrl: silent.url, timeoutMs: 200, retryAttempts: 1 });
      const error = await rejection(client.send({ to: "a@dest.test", subject: "s", text: "t" }));
      assert.equal(error.code, "timeout");
      assert.equal(error.status, null);
      assert.equal(error.retryable, true);
      assert.equal(error.attempts, 2);
      assert.deepEqual(time.sleeps, [1000]);
    } finally {
      await silent.close();
    }
  });

  test("a wrong API key: 401, not retried", async () => {
    const time = new FakeTime();
    const error = await rejection(
      clientFor(time, { apiKey: "sk_not_a_key" }).send({ to: "a@dest.test", subject: "s", text: "t" }),
    );
    assert.equal(error.status, 401);
    assert.equal(error.code, "unauthorized");
    assert.equal(error.retryable, false);
    assert.equal(error.attempts, 1);
    assert.deepEqual(time.sleeps, []);
  });

  test("a sender outside the account's domains: 403, not retried", async () => {
    const time = new FakeTime();
    const error = await rejection(
      clientFor(time).send({ from: "x@not-ours.test", to: "a@dest.test", subject: "s", text: "t" }),
    );
    assert.equal(error.status, 403);
    assert.equal(error.code, "sender_not_verified");
    assert.equal(error.retryable, false);
    assert.equal(error.attempts, 1);
  });

  test("an invalid address: 422, not retried, nothing sent", async () => {
    const time = new FakeTime();
    const error = await rejection(clientFor(time).send({ to: "not an address", subject: "s", text: "t" }));
    assert.equal(error.status, 422);
    assert.equal(error.code, "validation_failed");
    assert.equal(error.retryable, false);
    assert.equal(error.attempts, 1);
  });

  test("a key reused for another request: 422 idempotency_key_reused, not retried", async () => {
    const time = new FakeTime();
    const client = clientFor(time);
    const to = uniqueRecipient("reused");
    const key = `reused-${to}`;
    await client.send({ from: "app@example.com", to, subject: "First", text: "1" }, { idempotencyKey: key });
    const error = await rejection(
      client.send({ from: "app@example.com", to, subject: "Second", text: "2" }, { idempotencyKey: key }),
    );
    assert.equal(error.status, 422);
    assert.equal(error.code, "idempotency_key_reused");
    assert.equal(error.retryable, false);
    assert.equal(error.attempts, 1);
    await capturedTo(sluice, to, 1);
    assert.equal((await messagesTo(sluice, to)).length, 1);
  });

  test("429 with Retry-After: retried after the longer wait, capped at 10 s", async () => {
    const time = new FakeTime();
    const client = clientFor(time);
    const rateLimitKey = uniqueRecipient("limit");
    // Our server allows 2 sends per key an hour; another server its own number.
    let error: SluiceError | undefined;
    for (let sends = 0; sends < 50 && !error; sends++) {
      try {
        await client.send(
          { from: "app@example.com", to: uniqueRecipient("limited"), subject: "s", text: "t", rateLimitKey },
          { retryAttempts: 0 },
        );
      } catch (caught) {
        assert.ok(caught instanceof SluiceError);
        error = caught;
      }
    }
    assert.equal(error?.status, 429, "no 429 within 50 sends");
    assert.deepEqual(time.sleeps, []);
    const retried = await rejection(
      client.send(
        { from: "app@example.com", to: uniqueRecipient("limited"), subject: "s", text: "t", rateLimitKey },
        { retryAttempts: 1 },
      ),
    );
    assert.equal(retried.code, "rate_limited");
    assert.equal(retried.retryable, true);
    assert.equal(retried.attempts, 2);
    assert.ok((retried.retryAfterMs ?? 0) > 10_000, `Retry-After: ${retried.retryAfterMs}`);
    assert.deepEqual(time.sleeps, [10000]);
  });

  test("507 with Retry-After (disk below its reserve): retried, capped at 10 s", async (t) => {
    if (!sluice.ownConfig) {
      t.skip("needs a server of our own config (SLUICE_URL is set)");
      return;
    }
    const full = await startSluice({
      extraToml: "[storage]\nmin_free_bytes = 1000000000000000000",
      healthOnly: true,
    });
    try {
      const time = new FakeTime();
      const client = new SluiceClient({
        baseUrl: full.baseUrl,
        apiKey: full.apiKey,
        retryAttempts: 2,
        clock: time.clock,
        sleep: time.sleep,
      });
      const error = await rejection(
        client.send({ from: "app@example.com", to: "a@dest.test", subject: "s", text: "t" }),
      );
      assert.equal(error.status, 507);
      assert.equal(error.code, "insufficient_storage");
      assert.equal(error.retryable, true);
      assert.equal(error.attempts, 3);
      assert.equal(error.retryAfterMs, 30_000);
      assert.deepEqual(time.sleeps, [10000, 10000]);
    } finally {
      await full.stop();
    }
  });
});

describe("the workflow node executor", () => {
  test("success: the seed's shape, the template rendered", async () => {
    const time = new FakeTime();
    const to = uniqueRecipient("welcome");
    const result = await executeEmailNode(
      { to: `Ann <${to}>`, template: "welcome", data: { name: "Ann" }, from: "app@example.com", retryAttempts: 2 },
      { baseUrl: sluice.baseUrl, apiKey: sluice.apiKey, clock: time.clock, sleep: time.sleep },
    );
    assert.equal(result.status, "success");
    assert.ok(result.status === "success");
    assert.equal(typeof result.messageId, "number");
    assert.deepEqual(result, {
      status: "success",
      messageId: result.messageId,
      to: [`Ann <${to}>`],
      attempts: 1,
      timestamp: new Date(time.now).toISOString(),
      duration: 0,
    });
    const [message] = await capturedTo(sluice, to, 1);
    assert.equal(message.id, result.messageId);
    const raw: string = await api(sluice, `/messages/${result.messageId}/raw`);
    assert.match(raw, /^Subject: Welcome, Ann!\r?$/m);
  });

  test("a permanent error: the error shape at once", async () => {
    const time = new FakeTime();
    const result = await executeEmailNode(
      { to: "not an address", subject: "s", body: "<p>b</p>" },
      { baseUrl: sluice.baseUrl, apiKey: sluice.apiKey, clock: time.clock, sleep: time.sleep },
    );
    assert.deepEqual(result, {
      status: "error",
      error: result.status === "error" ? result.error : "",
      errorCode: "SMTP_SEND_ERROR",
      code: "validation_failed",
      retryable: false,
      attempts: 1,
      timestamp: new Date(time.now).toISOString(),
      duration: 0,
    });
    assert.match(result.status === "error" ? result.error : "", /^422 validation_failed: /);
  });

  test("a retryable error: retryAttempts retries, then the error shape", async () => {
    const time = new FakeTime();
    const port = await freePort();
    const result = await executeEmailNode(
      { to: "a@dest.test", subject: "s", body: "<p>b</p>", retryAttempts: 2 },
      { baseUrl: `http://127.0.0.1:${port}`, apiKey: sluice.apiKey, clock: time.clock, sleep: time.sleep },
    );
    assert.equal(result.status, "error");
    assert.ok(result.status === "error");
    assert.equal(result.code, "network_error");
    assert.equal(result.errorCode, "SMTP_SEND_ERROR");
    assert.equal(result.retryable, true);
    assert.equal(result.attempts, 3);
    assert.equal(result.duration, 3000);
    assert.deepEqual(time.sleeps, [1000, 2000]);
  });
});
