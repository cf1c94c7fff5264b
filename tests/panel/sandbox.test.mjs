// The capture sandbox's tools in a real browser, as an account's owner: the Checks tab,
// tags by hand, synthetic feedback and the sandbox settings (retention, release allowlist,
// chaos), then a real SMTP client meeting the chaos. Run by
// crates/sluice/tests/panel_sandbox.rs, which starts Sluice, spamd, a web server for the
// links and a webhook receiver, and captures the crafted message MESSAGE_ID.
import { execFileSync } from "node:child_process";
import { env, check, watch, begin, fail, launch, login } from "./harness.mjs";

const PANEL = env("PANEL_URL");
const MESSAGE_ID = env("MESSAGE_ID");
const SUBMISSION_PORT = env("SUBMISSION_PORT");
const SCREENSHOTS = process.env.SCREENSHOTS_DIR;

// One message through Python's smtplib (STARTTLS, the sandboxed account's login): "250"
// or the refusal's code and text.
const smtplibSend = () => execFileSync("python3", ["-c", String.raw`
import smtplib, ssl, sys
message = "From: app@example.com\r\nTo: ann@dest.test\r\nSubject: chaos\r\n\r\nhello\r\n"
try:
    with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20) as s:
        s.starttls(context=ssl._create_unverified_context())
        s.login(sys.argv[2], sys.argv[3])
        s.sendmail("app@example.com", ["ann@dest.test"], message)
    print("250")
except smtplib.SMTPRecipientsRefused as refused:
    code, text = refused.recipients["ann@dest.test"]
    print(code, text.decode())
except smtplib.SMTPResponseException as refused:
    print(refused.smtp_code, refused.smtp_error.decode())
`, SUBMISSION_PORT, env("SMTP_LOGIN"), env("SMTP_PASSWORD")], { encoding: "utf8" }).trim();

const browser = await launch();
let page = null;
try {
  page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 } })).newPage();
  watch(page);

  begin("login");
  await login(page, PANEL, env("OWNER_EMAIL"), env("OWNER_PASSWORD"));
  check(!page.url().endsWith("/login"), "the account's owner logs in");

  begin("checks");
  await page.goto(`${PANEL}/inbox?id=${MESSAGE_ID}`);
  await page.click(".tabs a[data-tab=checks]");
  await page.locator("#tab-checks .checks").waitFor({ timeout: 60000 });
  check(await page.isVisible("#tab-checks"), "the Checks tab shows");
  check((await page.textContent(".html-features tr[data-feature='display:flex']")).includes("outlook"),
    "the HTML report names display:flex and the clients that do not support it");
  check(/^\d+%$/.test((await page.textContent(".html-score")).trim()), "the HTML report has a score");
  const links = await page.locator(".link-statuses tr").evaluateAll((rows) =>
    rows.slice(1).map((r) => [r.querySelector(".link-url").textContent.trim(), r.querySelector(".link-status").textContent.trim()]));
  check(links.some(([url, status]) => url.endsWith("/ok.html") && status === "200"), `the working link answers 200 (${JSON.stringify(links)})`);
  check(links.some(([url, status]) => url.endsWith("/gone.html") && status === "404"), "the broken link answers 404");
  check(await page.locator(".link-statuses tr.link-bad").count() === 1, "only the broken link is marked bad");
  const spam = await page.textContent(".check-spam");
  check(spam.includes("GTUBE") && (await page.textContent(".spam-verdict")).trim() === "spam",
    "spamd's score marks the GTUBE message as spam and names the rule");
  check(Number((await page.textContent(".spam-score")).trim()) >= 1000, "the spam score is spamd's");
  if (SCREENSHOTS) {
    await page.screenshot({ path: `${SCREENSHOTS}/panel-checks.png` });
  }
  // Without scripts the same tab is a page of its own.
  const noScript = await page.evaluate(async (id) => (await fetch(`/inbox?id=${id}&checks=1`)).text(), MESSAGE_ID);
  check(noScript.includes('data-feature="display:flex"') && noScript.includes("GTUBE"), "?checks=1 renders the checks in the page (no scripts needed)");

  begin("tags");
  await page.fill(".tags-form input[name=tags]", "from-panel, release-7");
  await page.click(".tags-form button");
  await page.waitForURL(new RegExp(`/inbox\\?id=${MESSAGE_ID}$`));
  const tags = await page.locator(".message-tags .tag").allTextContents();
  check(tags.includes("from-panel") && tags.includes("release-7"), `the tags set by hand show on the message (${tags})`);
  await page.goto(`${PANEL}/inbox?q=${encodeURIComponent("tag:from-panel")}`);
  const found = await page.locator("li.inbox-row").evaluateAll((rows) => rows.map((r) => r.dataset.id));
  check(found.length === 1 && found[0] === MESSAGE_ID, "tag:from-panel finds the message");
  check((await page.textContent(`li.inbox-row[data-id="${MESSAGE_ID}"]`)).includes("from-panel"), "the list row shows the tag");

  begin("synthetic feedback");
  // Opened (by the script) from a search: the form comes back to the message in that search.
  await page.click(`a.inbox-open[data-id="${MESSAGE_ID}"]`);
  await page.waitForSelector(`.feedback-form input[name=q][value="tag:from-panel"]`, { state: "attached" });
  await page.click(".feedback-form button[value=bounced]");
  await page.waitForURL(new RegExp(`/inbox\\?id=${MESSAGE_ID}&q=tag%3Afrom-panel$`));
  check(await page.locator(`li.inbox-row[data-id="${MESSAGE_ID}"]`).count() === 1, "back in the search's list");
  check(await page.locator(".message-events li[data-kind=bounced_hard]").count() === 1, "the synthetic bounce shows among the message's events");
  await page.goto(`${PANEL}/r/suppressions`);
  const suppressions = await page.textContent("main");
  check(suppressions.includes("ann@dest.test"), "the bounced address is on the suppression list");

  begin("sandbox settings");
  await page.goto(`${PANEL}/inbox`);
  await page.click("a.sandbox-settings");
  check((await page.textContent("h1")) === "Sandbox settings", "the inbox links to its sandbox settings");
  check(await page.isChecked(".sandbox-form input[name=sandbox]"), "sandbox mode shows as on");
  await page.fill("input[name=capture_retention_count]", "25");
  await page.fill("textarea[name=capture_release_allowlist]", "dest.test");
  await page.fill("input[name=chaos_rcpt_code]", "451");
  await page.fill("input[name=chaos_rcpt_percent]", "100");
  await page.fill("input[name=chaos_rcpt_message]", "Chaos from the panel");
  await page.click(".sandbox-form button[type=submit]");
  check((await page.textContent("p.saved")).includes("Saved"), "the settings are saved");
  check(await page.inputValue("input[name=chaos_rcpt_code]") === "451" && await page.inputValue("input[name=capture_retention_count]") === "25",
    "the saved settings show again");

  begin("chaos");
  // The login's policy is cached briefly: the rule shows within a few seconds.
  let answer = "";
  for (let i = 0; i < 20 && !answer.startsWith("451"); i++) {
    answer = smtplibSend();
    if (!answer.startsWith("451")) await new Promise((r) => setTimeout(r, 500));
  }
  check(answer.startsWith("451") && answer.includes("Chaos from the panel"), `smtplib meets the 451 set in the panel (${answer})`);
  begin("done");
} catch (error) {
  await fail(error, page);
} finally {
  await browser.close();
}
