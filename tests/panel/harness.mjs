// What every browser test of the panel shares: its environment, checks that name what
// they check, and a watch on every page for console errors and CSP violations.
import { chromium } from "playwright-core";

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

let step = "start";

export const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
};

// Every console error and CSP violation of every page (and frame) visited, with the step
// it happened in. A step that causes one on purpose (a refused request) takes it back with
// `expected`; `begin` fails on any other before the next step starts.
let consoleErrors = [];
export const watch = (p) => {
  p.on("console", (message) => {
    if (message.type() !== "error") return;
    const where = message.location().url || p.url();
    // The tenant's own script in the sandboxed message frame is blocked on purpose.
    if (/\/messages\/\d+\/html$/.test(where)) return;
    consoleErrors.push(`[${step}] ${where}: ${message.text()}`);
  });
  p.on("pageerror", (error) => consoleErrors.push(`[${step}] ${p.url()}: ${error.message}`));
};
export const expected = (pattern) => {
  const before = consoleErrors.length;
  consoleErrors = consoleErrors.filter((e) => !pattern.test(e));
  return before - consoleErrors.length;
};
export const begin = (name) => {
  check(consoleErrors.length === 0, `no console errors or CSP violations during ${step}${consoleErrors.length ? `:\n${consoleErrors.join("\n")}` : ""}`);
  step = name;
};

export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});

// Logs in on the panel's login form.
export const login = async (page, panel, email, password) => {
  await page.goto(`${panel}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
};

// The end of a browser test that failed: the step, the check, and what the page showed.
export const fail = async (error, page) => {
  console.error(`not ok - during ${step}: ${error.message}`);
  if (page) console.error(`the page (${page.url()}) shows:\n${(await page.innerText("main").catch(() => "")).slice(0, 2000)}`);
  process.exitCode = 1;
};
