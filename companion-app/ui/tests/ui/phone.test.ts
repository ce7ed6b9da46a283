// Every screen at phone size (390×844 CSS px, an iPhone 12–15 sized viewport): Tauri's iOS and
// Android builds use this same web UI. On each screen: nothing scrolls sideways
// (scrollWidth ≤ clientWidth), every visible tap target is at least 44×44 px, and each text field,
// when focused, ends up in the top 60% of the window (an on-screen keyboard covers the bottom
// ~40%). The pictures land in test-results/phone-*.png (the docs use some of them).

import { describe, expect, test } from "vitest";
import type { Page } from "playwright-core";
import { emitPairing, emitSpeakers, kitchen, listOf, livingRoom, openApp, harnessPerFile, pageErrors, settle, SHOTS, stage } from "./browser";
import type { Scenario } from "./harness";
import { alice, bob, expectPhoneFriendly, linked, screenOf, through, toAccountSwitch, toAdvancedSettings, toProgress, toSetupCode, toSignIn, typeCode, wifiScan, wrongCode } from "./flow";

const h = harnessPerFile();
const PHONE = { width: 390, height: 844 };

async function shot(page: Page, name: string): Promise<void> {
  await settle(page);
  // The picture without the keyboard checks' traces: no focus ring, no room left for a keyboard.
  await page.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur();
    document.getElementById("keyboard-room")?.style.removeProperty("height");
    window.scrollTo({ top: 0, behavior: "instant" as ScrollBehavior });
  });
  await settle(page);
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

async function phone(scenario: Scenario = { speakers: listOf(livingRoom) }) {
  return openApp(h(), { ...PHONE, scenario });
}

/** The phone-size app at Progress of pairing 1: the living-room speaker, the right code typed. */
async function phoneAtProgress() {
  const opened = await phone();
  await toSetupCode(opened.page);
  await toProgress(opened.page);
  return opened;
}

const offline = { ...livingRoom, id: "c0ffee01", name: "Bedroom speaker", needsNetwork: true, transports: ["ble" as const], address: null };

describe("phone size (390×844)", () => {
  test("speakers list: rows, the offline speaker's note, add by address", async () => {
    const { page, context } = await phone({ speakers: listOf(offline, kitchen, livingRoom) });
    await page.locator(`[data-id="${offline.id}"]`).waitFor();
    await expectPhoneFriendly(page, { fields: 0 });
    await shot(page, "phone-speakers-list");
    await page.locator("#toggle-address").click();
    await expectPhoneFriendly(page, { fields: 1 });
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });

  test("speakers list, empty: the steps, Search again, Advanced open", async () => {
    const { page, context } = await phone({ speakers: listOf() });
    await page.locator("#empty-state").waitFor();
    await expectPhoneFriendly(page, { fields: 0 });
    await page.locator("#empty-advanced-toggle").click();
    await expectPhoneFriendly(page, { fields: 0 });
    await page.locator("#empty-advanced-toggle").click();
    await shot(page, "phone-speakers-empty");
    await context.close();
  });

  test("setup code: typing, a check-digit typo, a refused start", async () => {
    const { page, context } = await phone({
      speakers: listOf(livingRoom),
      fail: { start_pairing: { message: "That speaker is no longer in the list: choose it again.", field: null } },
    });
    await toSetupCode(page);
    await expectPhoneFriendly(page, { fields: 1 });
    await typeCode(page, "246813579");
    await expect.poll(() => page.locator("#code-status").innerText()).toContain("mistyped");
    await expectPhoneFriendly(page, { fields: 1 });
    await shot(page, "phone-setup-code-error");
    await typeCode(page, "24681357");
    await expect.poll(() => page.locator("#continue").isEnabled()).toBe(true);
    await page.locator("#continue").click();
    await page.locator("#start-error").waitFor();
    await expectPhoneFriendly(page, { fields: 1 });
    await context.close();
  });

  test("sign-in: the Amazon button, waiting, the pasted address", async () => {
    const { page, context } = await phoneAtProgress();
    await toSignIn(page, 1, false);
    await page.locator("#paste-form").waitFor();
    await expectPhoneFriendly(page, { fields: 1 });
    await shot(page, "phone-sign-in");
    await emitPairing(page, { type: "browserOpened", pairingId: 1 });
    await page.locator("#waiting").waitFor();
    await expectPhoneFriendly(page, { fields: 1 });
    await context.close();
  });

  test("progress: stages, the retry notice, Advanced timings open", async () => {
    const { page, context } = await phoneAtProgress();
    await emitPairing(
      page,
      ...through(1, "connect", "secure", "signIn", "handOver"),
      stage(1, "exchange", "active", "Exchanging the code with Amazon"),
      { type: "retrying", pairingId: 1, attempt: 1, reason: "Amazon was busy (503); trying again in 2 s." },
    );
    await expect.poll(() => screenOf(page)).toBe("progress");
    await page.locator("#retrying").waitFor();
    await expectPhoneFriendly(page, { fields: 0 });
    await shot(page, "phone-progress");
    await page.locator("#progress-advanced-toggle").click();
    await expectPhoneFriendly(page, { fields: 0 });
    await context.close();
  });

  test("Wi-Fi: list, password with Show, Other network…", async () => {
    const { page, context } = await phoneAtProgress();
    await emitPairing(page, { type: "wifiChoose", pairingId: 1, networks: wifiScan, lastError: "Wrong password for Home-5G", lastNetwork: 0 });
    await expect.poll(() => screenOf(page)).toBe("wifi");
    await expectPhoneFriendly(page, { fields: 1 });
    await page.locator('.wifi-row[data-value="other"]').click();
    await expectPhoneFriendly(page, { fields: 2 });
    await context.close();
  });

  test("result: linked, then a failure", async () => {
    const { page, context } = await phoneAtProgress();
    await emitPairing(page, linked(1));
    await expect.poll(() => screenOf(page)).toBe("result");
    await expectPhoneFriendly(page, { fields: 0 });
    await shot(page, "phone-result-linked");
    await page.locator("#done").click();

    await emitSpeakers(page, listOf(livingRoom));
    await toSetupCode(page);
    await toProgress(page);
    await emitPairing(page, { type: "failed", pairingId: 2, error: wrongCode });
    await expect.poll(() => screenOf(page)).toBe("result");
    await expectPhoneFriendly(page, { fields: 0 });
    await shot(page, "phone-result-failed");
    await context.close();
  });

  test("settings: region, then Advanced with the developer's fields", async () => {
    const { page, context } = await phone();
    await page.locator("#open-settings").click();
    await expect.poll(() => screenOf(page)).toBe("settings");
    await expectPhoneFriendly(page, { fields: 0 });
    await page.locator("#settings-advanced-toggle").click();
    await expectPhoneFriendly(page, { fields: 3 });
    await shot(page, "phone-settings");
    await context.close();
  });

  test("a keyboard opening over an already focused field: the field moves into what is left", async () => {
    // A mobile webview shrinks the visual viewport when its keyboard opens, after the focus
    // event. Here: the field is focused, the page scrolled so it sits low (700 px), then the
    // window shrinks to 390x506 as if a keyboard took the bottom 40%.
    const { page, context } = await phone();
    await toAdvancedSettings(page);
    await page.locator("#lwaBaseUrl").focus();
    await page.evaluate(() => {
      const r = document.getElementById("lwaBaseUrl")!.getBoundingClientRect();
      window.scrollBy({ top: r.top - 700, behavior: "instant" as ScrollBehavior });
    });
    await settle(page);
    expect(Math.round(await page.evaluate(() => document.getElementById("lwaBaseUrl")!.getBoundingClientRect().top))).toBe(700);
    await page.setViewportSize({ width: 390, height: 506 });
    await expect
      .poll(() => page.evaluate(() => {
        const r = document.getElementById("lwaBaseUrl")!.getBoundingClientRect();
        return r.top >= 0 && r.bottom <= window.innerHeight * 0.6;
      }))
      .toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("lwaBaseUrl");
    await context.close();
  });

  test("Replace the account? (15.5's screen), then the kept result", async () => {
    const { page, context } = await phoneAtProgress();
    await toAccountSwitch(page);
    await expectPhoneFriendly(page, { fields: 0 });
    await page.locator("#keep-account").click();
    await emitPairing(page, { type: "keptAccount", pairingId: 1, account: alice, notLinked: bob });
    await expect.poll(() => screenOf(page)).toBe("result");
    await expectPhoneFriendly(page, { fields: 0 });
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });

  test("a desktop window (920×760, no on-screen keyboard): focusing a low field moves nothing", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toAdvancedSettings(page);
    await page.evaluate(() => window.scrollTo({ top: 0, behavior: "instant" as ScrollBehavior }));
    const before = await page.evaluate(() => document.getElementById("redirectUri")!.getBoundingClientRect().top);
    expect(before).toBeGreaterThan(760 * 0.6); // low in the window, still in view
    await page.locator("#redirectUri").focus();
    await settle(page);
    expect(await page.evaluate(() => window.scrollY)).toBe(0);
    expect(await page.evaluate(() => document.getElementById("keyboard-room")!.style.height)).toBe("");
    await context.close();
  });
});
