// A live Sluice for the tests: the real binary with a generated config (free ports, SQLite
// in a temp dir, the capture provider), a sandboxed account made by `sluice account
// create`, and `sluice serve` waited for on /readyz. With SLUICE_URL (and SLUICE_API_KEY)
// set, that running server is used instead.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The repository's root: this file runs from clients/typescript/dist-test/. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export interface LiveSluice {
  baseUrl: string;
  apiKey: string;
  /** False for a server named by SLUICE_URL: its config is not ours to choose. */
  ownConfig: boolean;
  logs(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** TOML appended to the generated config. */
  extraToml?: string;
  /** Wait for /healthz instead of /readyz (a server that is up but not ready). */
  healthOnly?: boolean;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** A server named by SLUICE_URL / SLUICE_API_KEY, or null when the suite starts its own. */
export function externalSluice(): LiveSluice | null {
  const named = process.env.SLUICE_URL;
  if (!named) {
    return null;
  }
  const baseUrl = named.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
  const apiKey = process.env.SLUICE_API_KEY;
  if (!apiKey) {
    throw new Error("SLUICE_URL is set without SLUICE_API_KEY");
  }
  return { baseUrl, apiKey, ownConfig: false, logs: () => "", stop: async () => {} };
}

export async function startSluice(options: StartOptions = {}): Promise<LiveSluice> {
  const bin = process.env.SLUICE_BIN ?? path.join(REPO_ROOT, "target/debug/sluice");
  const dir = mkdtempSync(path.join(os.tmpdir(), "sluice-ts-client-"));
  const [smtp, http, panel, webhook] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const configPath = path.join(dir, "sluice.toml");
  writeFileSync(
    configPath,
    `data_dir = "${path.join(dir, "data")}"

[database]
url = ""

[smtp]
hostname = "sluice.test"
trusted_networks = ["127.0.0.0/8"]
trusted_account = "app@example.com"

[[smtp.listeners]]
addr = "127.0.0.1:${smtp}"
tls = "none"
auth = "none"

[store]
account_cache_ms = 0

[delivery]
poll_interval_ms = 100

[delivery.default_provider]
type = "capture"

[http]
listen = "127.0.0.1:${http}"

[panel]
listen = "127.0.0.1:${panel}"

[webhook]
listen = "127.0.0.1:${webhook}"

[api]
rate_limit_per_minute = 1000
send_rate_limit_per_key_per_hour = 2

[logging]
format = "text"

${options.extraToml ?? ""}
`,
  );
  const created = await run(
    bin,
    ["account", "create", "--config", configPath, "--name", "App", "--email", "app@example.com",
      "--domain", "example.com", "--sandbox"],
    { env: { ...process.env, SLUICE_ACCOUNT_PASSWORD: randomBytes(12).toString("hex") } },
  );
  const apiKey = /^api key:\s*(\S+)/m.exec(created.stdout)?.[1];
  if (!apiKey) {
    throw new Error(`account create printed no API key:\n${created.stdout}\n${created.stderr}`);
  }

  const logPath = path.join(dir, "serve.log");
  const log = openSync(logPath, "w");
  const child = spawn(bin, ["serve", "--config", configPath], {
    stdio: ["ignore", log, log],
    env: { ...process.env, RUST_LOG: "info" },
  });
  closeSync(log);
  const logs = () => readFileSync(logPath, "utf8");
  const baseUrl = `http://127.0.0.1:${http}`;
  const stop = async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilAnswers(`${baseUrl}${options.healthOnly ? "/healthz" : "/readyz"}`, child);
  } catch (error) {
    const text = logs();
    await stop();
    throw new Error(`${(error as Error).message}\n--- sluice serve log ---\n${text}`);
  }
  return { baseUrl, apiKey, ownConfig: true, logs, stop };
}

async function waitUntilAnswers(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sluice serve exited (${child.exitCode ?? child.signalCode}) before ${url} answered`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer 200 within 30 s`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** GET an API path with the account's key; the JSON answer. */
export async function api(sluice: LiveSluice, pathAndQuery: string): Promise<any> {
  const response = await fetch(`${sluice.baseUrl}/api/v1${pathAndQuery}`, {
    headers: { authorization: `Bearer ${sluice.apiKey}` },
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`GET ${pathAndQuery}: ${response.status} ${text}`);
  }
  return pathAndQuery.endsWith("/raw") ? text : JSON.parse(text);
}

/** The messages sent to one envelope recipient (tests give each send its own). */
export async function messagesTo(sluice: LiveSluice, recipient: string): Promise<any[]> {
  const page = await api(sluice, `/messages?to=${encodeURIComponent(recipient)}&limit=100`);
  return page.items;
}

/** Waits until every message to `recipient` is captured; their list. */
export async function capturedTo(sluice: LiveSluice, recipient: string, count: number): Promise<any[]> {
  const deadline = Date.now() + 20_000;
  let items: any[] = [];
  while (Date.now() < deadline) {
    items = await messagesTo(sluice, recipient);
    if (items.length >= count && items.every((m) => m.status === "captured")) {
      return items;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`expected ${count} captured message(s) to ${recipient}, found ${JSON.stringify(items)}`);
}

/** A recipient no other test uses. */
export function uniqueRecipient(label: string): string {
  return `${label}-${randomBytes(4).toString("hex")}@dest.test`;
}
