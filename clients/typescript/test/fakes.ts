// Test doubles around the real client: a clock that only moves when the client sleeps,
// a TCP proxy that drops answers, and a server that never answers.

import net from "node:net";

/** A clock and a sleep: sleeping records the wait and moves the clock, at once. */
export class FakeTime {
  now: number;
  readonly sleeps: number[] = [];

  constructor(start = Date.UTC(2026, 0, 2, 3, 4, 5)) {
    this.now = start;
  }

  readonly clock = (): number => this.now;

  readonly sleep = async (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.now += ms;
  };
}

export interface DropProxy {
  url: string;
  /** Requests whose answers were read from the server and not passed on. */
  dropped: number;
  close(): Promise<void>;
}

/**
 * A proxy in front of `targetPort`: for the first `drops` connections it forwards the
 * request, reads the server's whole answer and closes the client's connection without
 * passing it on; later connections pass through.
 */
export function dropProxy(targetPort: number, drops: number): Promise<DropProxy> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const proxy: DropProxy = { url: "", dropped: 0, close: async () => {} };
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    const drop = connections++ < drops;
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream);
    if (!drop) {
      upstream.pipe(client);
      return;
    }
    let answer = Buffer.alloc(0);
    upstream.on("data", (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      if (isCompleteAnswer(answer)) {
        proxy.dropped++;
        client.destroy();
        upstream.destroy();
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      proxy.url = `http://127.0.0.1:${address.port}`;
      proxy.close = () =>
        new Promise((done) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => done());
        });
      resolve(proxy);
    });
  });
}

/** A whole HTTP/1.1 answer: its head and Content-Length bytes of body. */
function isCompleteAnswer(bytes: Buffer): boolean {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) {
    return false;
  }
  const head = bytes.subarray(0, end).toString("latin1");
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  return length !== undefined && bytes.length >= end + 4 + Number(length);
}

/** A server that accepts connections and reads requests but never answers. */
export function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.resume();
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${address.port}`,
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** A fetch that answers from a list, recording each request; throws when called past it. */
export function scriptedFetch(answers: Array<() => Response>): {
  fetch: typeof fetch;
  requests: Array<{ url: string; init: RequestInit }>;
} {
  const requests: Array<{ url: string; init: RequestInit }> = [];
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    requests.push({ url: String(input), init: init ?? {} });
    const next = answers[requests.length - 1];
    if (!next) {
      throw new Error(`unexpected request ${requests.length}`);
    }
    return next();
  };
  return { fetch: fake as typeof fetch, requests };
}

/** A JSON answer in Sluice's error shape. */
export function errorAnswer(status: number, code: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { code, message: `${code} (scripted)`, request_id: "r-1" } }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function sentAnswer(id: number, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ id, status: "queued" }), {
    status: 202,
    headers: { "content-type": "application/json", ...headers },
  });
}
