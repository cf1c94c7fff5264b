// The retry policy without a server: the pure schedule, and the client's tries against a
// scripted fetch with an injected clock and sleep (nothing sleeps for real).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  SluiceClient,
  SluiceError,
  addressList,
  executeEmailNode,
  isRetryableStatus,
  parseRetryAfter,
  retryDelayMs,
} from "../dist/index.js";
import { FakeTime, errorAnswer, scriptedFetch, sentAnswer } from "./fakes.js";

const BASE = "http://sluice.invalid:2580";

function clientWith(answers: Array<() => Response>, time: FakeTime, retryAttempts = 3) {
  const scripted = scriptedFetch(answers);
  const client = new SluiceClient({
    baseUrl: BASE,
    apiKey: "test-key",
    retryAttempts,
    clock: time.clock,
    sleep: time.sleep,
    fetch: scripted.fetch,
  });
  return { client, requests: scripted.requests };
}

const MESSAGE = { from: "app@example.com", to: "ann@dest.test", subject: "Hi", text: "Hello" };

async function rejection(promise: Promise<unknown>): Promise<SluiceError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SluiceError, `not a SluiceError: ${String(error)}`);
    return error;
  }
  assert.fail("the send succeeded");
}

describe("the schedule", () => {
  test("doubles from 1 s and stops at 10 s", () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 40].map((retry) => retryDelayMs(retry));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000]);
  });

  test("a longer Retry-After wins, still capped at 10 s; a shorter one does not", () => {
    assert.equal(retryDelayMs(0, 3000), 3000);
    assert.equal(retryDelayMs(0, 500), 1000);
    assert.equal(retryDelayMs(3, 5000), 8000);
    assert.equal(retryDelayMs(1, 30_000), 10_000);
  });

  test("Retry-After as seconds or an HTTP date against the given clock", () => {
    const now = Date.UTC(2026, 0, 2, 3, 4, 5);
    assert.equal(parseRetryAfter("5", now), 5000);
    assert.equal(parseRetryAfter(new Date(now + 7000).toUTCString(), now), 7000);
    assert.equal(parseRetryAfter(new Date(now - 7000).toUTCString(), now), 0);
    assert.equal(parseRetryAfter("soon", now), null);
    assert.equal(parseRetryAfter(null, now), null);
  });

  test("which statuses are retried", () => {
    for (const status of [408, 429, 500, 502, 503, 504, 507]) {
      assert.equal(isRetryableStatus(status, "any"), true, `${status}`);
    }
    for (const status of [400, 401, 403, 404, 405, 409, 413, 415, 422, 501]) {
      assert.equal(isRetryableStatus(status, "any"), false, `${status}`);
    }
    assert.equal(isRetryableStatus(409, "idempotency_key_in_use"), true);
    assert.equal(isRetryableStatus(409, "conflict"), false);
  });
});

describe("the client's tries", () => {
  test("retries every retryable answer with the same key and body, on the schedule", async () => {
    const time = new FakeTime();
    const { client, requests } = clientWith(
      [
        () => errorAnswer(503, "database_unavailable", { "retry-after": "5" }),
        () => errorAnswer(500, "internal"),
        () => errorAnswer(502, "upstream_failed"),
        () => errorAnswer(504, "gateway_timeout"),
        () => errorAnswer(409, "idempotency_key_in_use", { "retry-after": "1" }),
        () => errorAnswer(408, "request_timeout"),
        () => sentAnswer(41),
      ],
      time,
      6,
    );
    const sent = await client.send(MESSAGE);
    assert.deepEqual(time.sleeps, [5000, 2000, 4000, 8000, 10000, 10000]);
    assert.equal(sent.id, 41);
    assert.equal(sent.attempts, 7);
    assert.equal(sent.replayed, false);
    assert.equal(requests.length, 7);
    const keys = new Set(requests.map((r) => (r.init.headers as Record<string, string>)["idempotency-key"]));
    assert.equal(keys.size, 1, "one idempotency key for every try");
    assert.match([...keys][0] ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(sent.idempotencyKey, [...keys][0]);
    assert.equal(new Set(requests.map((r) => r.init.body)).size, 1, "the same body bytes every try");
    assert.equal(requests[0]?.url, `${BASE}/api/v1/send`);
    assert.equal((requests[0]?.init.headers as Record<string, string>).authorization, "Bearer test-key");
  });

  test("an HTTP-date Retry-After is read against the injected clock", async () => {
    const time = new FakeTime();
    const later = new Date(time.now + 6000).toUTCString();
    const { client } = clientWith(
      [() => errorAnswer(429, "rate_limited", { "retry-after": later }), () => sentAnswer(1)],
      time,
    );
    await client.send(MESSAGE);
    assert.deepEqual(time.sleeps, [6000]);
  });

  test("gives up after retryAttempts retries with the last error", async () => {
    const time = new FakeTime();
    const { client, requests } = clientWith(
      Array.from({ length: 3 }, () => () => errorAnswer(507, "insufficient_storage", { "retry-after": "30" })),
      time,
      2,
    );
    const error = await rejection(client.send(MESSAGE));
    assert.equal(error.code, "insufficient_storage");
    assert.equal(error.status, 507);
    assert.equal(error.retryable, true);
    assert.equal(error.attempts, 3);
    assert.equal(error.retryAfterMs, 30_000);
    assert.deepEqual(time.sleeps, [10000, 10000]);
    assert.equal(requests.length, 3);
  });

  test("a per-send retryAttempts of 0 makes one try", async () => {
    const time = new FakeTime();
    const { client } = clientWith([() => errorAnswer(503, "database_unavailable")], time);
    const error = await rejection(client.send(MESSAGE, { retryAttempts: 0 }));
    assert.equal(error.attempts, 1);
    assert.deepEqual(time.sleeps, []);
  });

  for (const [status, code] of [
    [400, "invalid_json"],
    [401, "unauthorized"],
    [403, "sender_not_verified"],
    [404, "not_found"],
    [409, "conflict"],
    [413, "payload_too_large"],
    [422, "validation_failed"],
    [422, "idempotency_key_reused"],
  ] as const) {
    test(`${status} ${code} fails at once`, async () => {
      const time = new FakeTime();
      const { client, requests } = clientWith([() => errorAnswer(status, code)], time);
      const error = await rejection(client.send(MESSAGE));
      assert.equal(error.status, status);
      assert.equal(error.code, code);
      assert.equal(error.retryable, false);
      assert.equal(error.attempts, 1);
      assert.equal(error.requestId, "r-1");
      assert.equal(requests.length, 1);
      assert.deepEqual(time.sleeps, []);
    });
  }

  test("an answer that is not Sluice's JSON: invalid_response, retried by its status", async () => {
    const time = new FakeTime();
    const { client } = clientWith(
      [
        () => new Response("<html>bad gateway</html>", { status: 502 }),
        () => new Response("ok", { status: 200 }),
      ],
      time,
    );
    const error = await rejection(client.send(MESSAGE));
    assert.equal(error.code, "invalid_response");
    assert.equal(error.status, 200);
    assert.equal(error.retryable, false);
    assert.equal(error.attempts, 2);
    assert.deepEqual(time.sleeps, [1000]);
  });

  test("missing parameters and a malformed key are refused before any call", async () => {
    const time = new FakeTime();
    const { client, requests } = clientWith([], time);
    for (const request of [
      { to: [], subject: "s", text: "t" },
      { to: "a@dest.test", text: "t" },
      { to: "a@dest.test", subject: "s" },
    ]) {
      const error = await rejection(client.send(request));
      assert.equal(error.code, "missing_parameter");
      assert.equal(error.retryable, false);
      assert.equal(error.status, null);
      assert.equal(error.attempts, 0);
    }
    const bad = await rejection(client.send(MESSAGE, { idempotencyKey: "has space" }));
    assert.equal(bad.code, "invalid_idempotency_key");
    assert.equal(requests.length, 0);
  });

  test("the request in the API's spelling; a replay is reported", async () => {
    const time = new FakeTime();
    const { client, requests } = clientWith([() => sentAnswer(9, { "idempotent-replayed": "true" })], time);
    const sent = await client.send(
      {
        ...MESSAGE,
        replyTo: "help@example.com",
        attachments: [{ filename: "a.txt", contentType: "text/plain", content: new TextEncoder().encode("hi") }],
        rateLimitKey: "k",
        deliveryRetryAttempts: 2,
      },
      { idempotencyKey: "order-17", mode: "sync" },
    );
    assert.equal(sent.replayed, true);
    assert.equal(sent.idempotencyKey, "order-17");
    assert.equal(requests[0]?.url, `${BASE}/api/v1/send?mode=sync`);
    assert.deepEqual(JSON.parse(String(requests[0]?.init.body)), {
      from: "app@example.com",
      to: "ann@dest.test",
      reply_to: "help@example.com",
      subject: "Hi",
      text: "Hello",
      attachments: [{ filename: "a.txt", content_type: "text/plain", content: "aGk=" }],
      rate_limit_key: "k",
      retry_attempts: 2,
    });
  });
});

describe("the executor without a server", () => {
  test("missing parameters: the error shape, no call", async () => {
    const time = new FakeTime();
    const { client, requests } = clientWith([], time);
    for (const params of [
      { subject: "s", body: "<p>b</p>" },
      { to: "a@dest.test", body: "<p>b</p>" },
      { to: "a@dest.test", subject: "s" },
      { to: " , ", subject: "s", body: "b" },
    ]) {
      const result = await executeEmailNode(params, { client, clock: time.clock });
      assert.deepEqual(result, {
        status: "error",
        error: result.status === "error" ? result.error : "",
        errorCode: "SMTP_SEND_ERROR",
        code: "missing_parameter",
        retryable: false,
        attempts: 0,
        timestamp: new Date(time.now).toISOString(),
        duration: 0,
      });
      assert.match(result.status === "error" ? result.error : "", /missing parameter/);
    }
    assert.equal(requests.length, 0);
  });

  test("maps the seed's parameters; retryAttempts stays in the client; duration by the clock", async () => {
    const time = new FakeTime();
    const { client, requests } = clientWith(
      [() => errorAnswer(503, "database_unavailable"), () => errorAnswer(503, "database_unavailable"), () => sentAnswer(5)],
      time,
      0,
    );
    const result = await executeEmailNode(
      {
        to: '"Doe, Ann" <ann@dest.test>, bob@dest.test',
        template: "welcome",
        data: { name: "Ann" },
        from: "app@example.com",
        cc: "carol@dest.test",
        bcc: ["dave@dest.test"],
        attachments: [
          { filename: "notes.txt", content: "héllo", contentType: "text/plain" },
          { filename: "b.bin", content: "AAEC", encoding: "base64" },
        ],
        retryAttempts: "2",
      },
      { client, clock: time.clock },
    );
    assert.deepEqual(result, {
      status: "success",
      messageId: 5,
      to: ['"Doe, Ann" <ann@dest.test>', "bob@dest.test"],
      attempts: 3,
      timestamp: new Date(time.now).toISOString(),
      duration: 3000,
    });
    assert.deepEqual(JSON.parse(String(requests[0]?.init.body)), {
      from: "app@example.com",
      to: ['"Doe, Ann" <ann@dest.test>', "bob@dest.test"],
      cc: ["carol@dest.test"],
      bcc: ["dave@dest.test"],
      template: "welcome",
      data: { name: "Ann" },
      attachments: [
        { filename: "notes.txt", content_type: "text/plain", content: Buffer.from("héllo").toString("base64") },
        { filename: "b.bin", content_type: "application/octet-stream", content: "AAEC" },
      ],
    });
  });

  test("addressList splits on commas outside quotes and angle brackets", () => {
    assert.deepEqual(addressList('a@x.test, "Last, First" <f@x.test>,<odd,@x.test>'), [
      "a@x.test",
      '"Last, First" <f@x.test>',
      "<odd,@x.test>",
    ]);
    assert.deepEqual(addressList(["a@x.test", " "]), ["a@x.test"]);
    assert.deepEqual(addressList(undefined), []);
  });
});
