// The web UI in a real browser (Debian's chromium via playwright-core) with the Tauri IPC mocked
// by @tauri-apps/api/mocks: every screen, the error states, the keyboard flow, 200% zoom and the
// list that must not jump when a speaker appears. Screenshots land in test-results/ for review.

import { describe, expect, test } from "vitest";
import type { Page } from "playwright-core";
import type { PairingEvent, WifiNetworkView } from "../../src/ipc";
import {
  calls,
  emitPairing,
  emitSpeakers,
  kitchen,
  listOf,
  livingRoom,
  openApp,
  pageErrors,
  settle,
  stage,
  harnessPerFile,
  shot,
  type Harness,
} from "./browser";
import {
  alice,
  bob,
  exchanging,
  linked,
  screenOf,
  through,
  toAccountSwitch,
  toProgress,
  toSetupCode,
  toSignIn as toSignInFromProgress,
  typeCode,
} from "./flow";

const h = harnessPerFile();

const screen = screenOf;

/** Drives a pairing from the setup code screen to the sign-in screen (`automatic`: the browser opens by itself). */
async function toSignIn(page: Page, id = 1, automatic = true): Promise<void> {
  await toProgress(page);
  await toSignInFromProgress(page, id, automatic);
}

/** The app with the living-room speaker listed, at the Sign-in screen of pairing 1. */
async function openAtSignIn(harness: Harness, automatic = true) {
  const opened = await openApp(harness, { scenario: { speakers: listOf(livingRoom) } });
  await opened.page.locator("#continue").click();
  await toSignIn(opened.page, 1, automatic);
  return opened;
}

describe("Speakers nearby", () => {
  test("empty state explains pairing mode, then a speaker appears without moving anything", async () => {
    const { page, context } = await openApp(h());
    expect(await screen(page)).toBe("speakers");
    await expect.poll(() => page.locator("#empty-state").isVisible()).toBe(true);
    const empty = await page.locator("#empty-state").innerText();
    expect(empty).toContain("pairing mode");
    expect(await page.locator("#discovery-status").innerText()).toContain("Searching");
    expect(await page.locator("#continue").isDisabled()).toBe(true);
    await shot(page, "01-speakers-empty");

    const before = await page.locator("#toggle-address").boundingBox();
    const btnBefore = await page.locator("#continue").boundingBox();
    await emitSpeakers(page, listOf(livingRoom));
    await page.locator(`[data-id="${livingRoom.id}"]`).waitFor();
    const after = await page.locator("#toggle-address").boundingBox();
    const btnAfter = await page.locator("#continue").boundingBox();
    expect(after?.y).toBe(before?.y);
    expect(btnAfter?.y).toBe(btnBefore?.y);
    // The primary action is on screen at the window's default size, without scrolling.
    expect(btnAfter!.y + btnAfter!.height).toBeLessThanOrEqual(760);

    // The only pairable speaker is preselected: Continue is the one action.
    expect(await page.locator(`#speaker-${livingRoom.id}`).isChecked()).toBe(true);
    expect(await page.locator("#continue").isEnabled()).toBe(true);
    const row = await page.locator(`[data-id="${livingRoom.id}"]`).innerText();
    expect(row).toContain("Living room speaker");
    expect(row).toContain("Wi-Fi");
    expect(row).toContain("active now");
    expect(row).toContain("Ready to set up");

    // A second, closed speaker: listed, not choosable, says why.
    await emitSpeakers(page, listOf(kitchen, livingRoom));
    await page.locator(`[data-id="${kitchen.id}"]`).waitFor();
    expect(await page.locator(`#speaker-${kitchen.id}`).isDisabled()).toBe(true);
    expect(await page.locator(`[data-id="${kitchen.id}"]`).innerText()).toContain("pairing mode");
    expect(await page.locator(`[data-id="${kitchen.id}"]`).innerText()).toContain("checked 1 min ago");
    await shot(page, "02-speakers-list");

    // It goes away again.
    await emitSpeakers(page, listOf(kitchen));
    await expect.poll(() => page.locator(`[data-id="${livingRoom.id}"]`).count()).toBe(0);
    expect(await page.locator("#continue").isDisabled()).toBe(true);
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });

  test("adding a speaker by address: a bad address is explained, a good one is selected", async () => {
    const { page, context } = await openApp(h(), {
      scenario: { speakers: { discovery: "off", message: "Automatic discovery is turned off on this computer.", speakers: [] } },
    });
    expect(await page.locator("#discovery-status").innerText()).toContain("turned off");
    await page.locator("#toggle-address").click();
    expect(await page.locator("#address").evaluate((el) => el === document.activeElement)).toBe(true);
    await page.locator("#address").fill("speaker.local");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#address-error").innerText()).toContain("IP address and port");
    expect(await page.locator("#address").getAttribute("aria-invalid")).toBe("true");
    await shot(page, "03-speakers-address-error");

    await page.locator("#address").fill("10.0.0.7:4100");
    await page.keyboard.press("Enter");
    await page.locator('[data-id="manual-1"]').waitFor();
    expect(await page.locator("#speaker-manual-1").isChecked()).toBe(true);
    expect(await page.locator('[data-id="manual-1"]').innerText()).toContain("Added by address");
    expect(await page.locator('[data-id="manual-1"]').innerText()).toContain("checked just now");
    expect(await page.locator("#address-form").isHidden()).toBe(true);
    await context.close();
  });

  test("without a client id the list says what to do first", async () => {
    const { page, context } = await openApp(h(), { scenario: { settings: { clientId: "", ready: false } } });
    await expect.poll(() => page.locator("#settings-note").isVisible()).toBe(true);
    await page.locator("#settings-note button").click();
    expect(await screen(page)).toBe("settings");
    expect(await page.locator("#clientId").evaluate((el) => el === document.activeElement)).toBe(true);
    await context.close();
  });
});

describe("Setup code", () => {
  test("validates as you type: count, check digit, trivial codes, QR payloads", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await page.locator("#continue").click();
    expect(await screen(page)).toBe("setupCode");
    expect(await page.locator("#code-speaker").innerText()).toBe("Living room speaker");
    expect(await page.locator("#setup-code").evaluate((el) => el === document.activeElement)).toBe(true);

    await typeCode(page, "246813");
    await expect.poll(() => page.locator("#code-status").innerText()).toContain("2 more digits");
    expect(await page.locator("#setup-code").inputValue()).toBe("2468 13");
    expect(await page.locator("#continue").isDisabled()).toBe(true);

    await typeCode(page, "24681357");
    await expect.poll(() => page.locator("#code-status").innerText()).toContain("8 digits");
    expect(await page.locator("#continue").isEnabled()).toBe(true);
    await shot(page, "04-setup-code-valid");

    // 9th digit: the check digit of 24681357 is 4 (Verhoeff); 9 is a typo.
    await typeCode(page, "246813579");
    await expect.poll(() => page.locator("#code-status").innerText()).toContain("mistyped");
    expect(await page.locator("#setup-code").inputValue()).toBe("2468-1357-9");
    expect(await page.locator("#setup-code").getAttribute("aria-invalid")).toBe("true");
    expect(await page.locator("#continue").isDisabled()).toBe(true);
    await shot(page, "05-setup-code-check-digit");

    await typeCode(page, "246813574");
    await expect.poll(() => page.locator("#code-status").innerText()).toContain("Check digit matches");
    expect(await page.locator("#continue").isEnabled()).toBe(true);

    await typeCode(page, "11111111");
    await expect.poll(() => page.locator("#code-status").innerText()).toContain("too easy");

    await page.locator("#setup-code").fill(`AVSPAIR:1:${livingRoom.id}:246813574`);
    await expect.poll(() => page.locator("#code-status").innerText()).toContain("QR code");
    expect(await page.locator("#continue").isEnabled()).toBe(true);
    await page.locator("#setup-code").fill("AVSPAIR:1:someoneelse:246813574");
    await expect.poll(() => page.locator("#code-status").innerText()).toContain("different speaker");
    expect(await page.locator("#continue").isDisabled()).toBe(true);

    // The code never went anywhere but check_setup_code.
    expect((await calls(page)).map((c) => c.cmd)).not.toContain("start_pairing");
    await page.keyboard.press("Escape");
    expect(await screen(page)).toBe("speakers");
    await context.close();
  });

  test("a start refused for missing settings offers the settings", async () => {
    const { page, context } = await openApp(h(), {
      scenario: {
        speakers: listOf(livingRoom),
        fail: { start_pairing: { message: "Add your Login with Amazon client id in Settings first.", field: "clientId" } },
      },
    });
    await page.locator("#continue").click();
    await typeCode(page, "24681357");
    await expect.poll(() => page.locator("#continue").isEnabled()).toBe(true);
    await page.keyboard.press("Enter");
    await page.locator("#start-error").waitFor();
    expect(await page.locator("#start-error").innerText()).toContain("client id");
    await shot(page, "06-setup-code-start-error");
    await page.locator("#error-settings").click();
    expect(await screen(page)).toBe("settings");
    await context.close();
  });
});

describe("Sign in, progress and result", () => {
  test("the whole flow by keyboard alone", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(kitchen, livingRoom) } });
    // Speakers: Tab into the radio group (the pairable row), Enter continues.
    // Focus starts on the heading; the next stop is the selected row.
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe("H1");
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => (document.activeElement as HTMLInputElement).value);
    expect(focused).toBe(livingRoom.id);
    await page.keyboard.press("Enter");
    expect(await screen(page)).toBe("setupCode");

    // Setup code: focus is in the field; type, Enter.
    await page.keyboard.type("24681357");
    await expect.poll(() => page.locator("#continue").isEnabled()).toBe(true);
    await page.keyboard.press("Enter");
    await expect.poll(() => screen(page)).toBe("progress");
    const start = (await calls(page)).find((c) => c.cmd === "start_pairing");
    expect(start?.args).toEqual({ speakerId: livingRoom.id, setupCode: "2468 1357" });

    await emitPairing(page, stage(1, "connect", "active"));
    await expect.poll(() => page.locator('[data-stage="connect"]').getAttribute("class")).toContain("active");
    await shot(page, "07-progress-connecting");
    await emitPairing(
      page,
      stage(1, "connect", "done"),
      stage(1, "secure", "active"),
      stage(1, "secure", "done"),
      stage(1, "signIn", "active"),
      { type: "signIn", pairingId: 1, url: "http://127.0.0.1:8080/ap/oa?client_id=x", automatic: true },
    );
    await expect.poll(() => screen(page)).toBe("signIn");
    // Sign in: the Amazon button has focus; Enter opens the browser (from Rust).
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("open-sign-in");
    await shot(page, "08-sign-in");
    await page.keyboard.press("Enter");
    await expect.poll(async () => (await calls(page)).some((c) => c.cmd === "open_sign_in")).toBe(true);
    await emitPairing(page, { type: "browserOpened", pairingId: 1 });
    await page.locator("#waiting").waitFor();
    expect(await page.locator("#waiting").innerText()).toContain("Waiting for you to finish in the browser");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("reopen");
    await shot(page, "09-sign-in-waiting");

    await emitPairing(page, ...exchanging(1, "Exchanging the code with Amazon"));
    await expect.poll(() => screen(page)).toBe("progress");
    await expect.poll(() => page.locator('[data-stage="exchange"]').innerText()).toContain("Exchanging the code");
    expect(await page.locator('[data-stage="signIn"]').getAttribute("class")).toContain("done");
    await shot(page, "10-progress-exchanging");

    await emitPairing(page, linked(1));
    await expect.poll(() => screen(page)).toBe("result");
    expect(await page.locator("h1").innerText()).toBe("Living room speaker is linked");
    expect(await page.locator("#account").innerText()).toContain("amzn1.account.AEXAMPLEALICE");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("done");
    await shot(page, "11-result-linked");
    await page.keyboard.press("Enter");
    expect(await screen(page)).toBe("speakers");
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });

  test("cancel while waiting for the browser stops the pairing", async () => {
    const { page, context } = await openAtSignIn(h());
    await page.locator("#cancel").click();
    await expect.poll(async () => (await calls(page)).some((c) => c.cmd === "cancel_pairing")).toBe(true);
    expect(await screen(page)).toBe("setupCode");
    // Late events of the cancelled attempt change nothing — events the app acts on for a live
    // attempt: a stage moving on (would show Progress) and a final linked (would show Result).
    await emitPairing(page, { type: "stage", pairingId: 1, stage: "exchange", state: "active", detail: null, millis: null });
    await emitPairing(page, linked(1));
    expect(await screen(page)).toBe("setupCode");
    expect(await page.locator("h1").innerText()).not.toContain("is linked");
    await context.close();
  });

  test("settings opened mid-pairing return to where the pairing is now", async () => {
    const { page, context } = await openAtSignIn(h());
    await page.locator("#open-settings").click();
    expect(await screen(page)).toBe("settings");
    await emitPairing(page, {
      type: "failed",
      pairingId: 1,
      error: { kind: "signInCancelled", title: "Sign-in didn't finish", message: "No sign-in response within 300s.", retry: "sameCode" },
    });
    expect(await screen(page)).toBe("settings");
    await page.keyboard.press("Escape");
    await expect.poll(() => screen(page)).toBe("result");
    expect(await page.locator("h1").innerText()).toBe("Sign-in didn't finish");
    await context.close();
  });

  test("a redirect that can't come back asks for the landing address", async () => {
    const { page, context } = await openAtSignIn(h(), false);
    await page.locator("#paste-form").waitFor();
    await page.locator("#paste-url").fill("amzn://cb?code=x&state=y");
    await page.keyboard.press("Enter");
    await expect.poll(async () => (await calls(page)).find((c) => c.cmd === "paste_redirect")?.args).toEqual({ url: "amzn://cb?code=x&state=y" });
    await context.close();
  });

  // Issue 15.9: a pasted address that is not the return address is not the end of the pairing:
  // the screen says why and the field is ready for another paste.
  test("a rejected paste says why and keeps the field ready", async () => {
    const { page, context } = await openAtSignIn(h(), false);
    await page.locator("#paste-url").fill("not the address");
    await page.keyboard.press("Enter");
    const why = "That is not the address the sign-in ended on (it has no `state` parameter); copy the whole address from the browser's address bar. Paste it again (2 tries left).";
    await emitPairing(page, { type: "pasteRejected", pairingId: 1, message: why });
    await expect.poll(() => page.locator("#sign-in-error").innerText()).toBe(why);
    expect(await screen(page)).toBe("signIn");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("paste-url");
    await shot(page, "17-sign-in-paste-rejected");
    await context.close();
  });

  test("a browser that can't be opened is explained on the sign-in screen", async () => {
    const { page, context } = await openApp(h(), {
      scenario: {
        speakers: listOf(livingRoom),
        fail: { open_sign_in: { message: "Couldn't open your browser (xdg-open: not found). Copy the link and open it yourself.", field: null } },
      },
    });
    await page.locator("#continue").click();
    await toSignIn(page);
    await page.locator("#open-sign-in").click();
    await expect.poll(() => page.locator("#sign-in-error").innerText()).toContain("Couldn't open your browser");
    await context.close();
  });

  const failures = [
    {
      name: "wrong setup code → enter it again",
      error: { kind: "wrongSetupCode", title: "Wrong setup code", message: "Wrong setup code: it does not match the speaker's.", retry: "newCode" },
      button: "Enter the code again",
      next: "setupCode",
      shot: "12-result-wrong-code",
    },
    {
      name: "unreachable → try again with the same code",
      error: { kind: "unreachable", title: "Can't reach the speaker", message: "The speaker closed the connection during the hello.", retry: "sameCode" },
      button: "Try again",
      next: "progress",
      shot: "13-result-unreachable",
    },
    {
      name: "locked out → back to the list",
      error: { kind: "notPairable", title: "The speaker isn't accepting pairing", message: "The speaker refused: locked after 20 wrong codes; try again in 60 s.", retry: "chooseSpeaker" },
      button: "Back to speakers",
      next: "speakers",
      shot: "14-result-locked",
    },
    {
      name: "Amazon refused the client → settings",
      error: { kind: "amazonRefused", title: "Amazon refused the speaker's sign-in", message: "Amazon does not accept client id x: copy the client id from your security profile.", retry: "settings" },
      button: "Open settings",
      next: "settings",
      shot: "15-result-amazon",
    },
  ] as const;

  for (const f of failures) {
    test(`failure: ${f.name}`, async () => {
      const { page, context } = await openAtSignIn(h());
      await emitPairing(page, { type: "failed", pairingId: 1, error: f.error });
      await expect.poll(() => screen(page)).toBe("result");
      expect(await page.locator("h1").innerText()).toBe(f.error.title);
      expect(await page.locator("#error-message").innerText()).toBe(f.error.message);
      expect(await page.locator("#retry").innerText()).toBe(f.button);
      await shot(page, f.shot);
      await page.locator("#retry").click();
      await expect.poll(() => screen(page)).toBe(f.next);
      if (f.error.retry === "sameCode") {
        expect((await calls(page)).map((c) => c.cmd)).toContain("retry_pairing");
      }
      await context.close();
    });
  }

  // Issue 15.7: a wrong code found while checking the code is not "Setup code ✓", and the result
  // says how many tries are left (the speaker's count, in the core's sentence).
  test("a wrong setup code marks the setup-code step failed and says the tries left", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toSetupCode(page);
    await toProgress(page);
    const message = "Wrong setup code: 3 tries left before pairing locks for 1 minute (check the label or the code shown at first boot).";
    await emitPairing(
      page,
      stage(1, "connect", "active"),
      stage(1, "connect", "done"),
      stage(1, "secure", "active"),
      { type: "failed", pairingId: 1, error: { kind: "wrongSetupCode", title: "Wrong setup code", message, retry: "newCode" } },
    );
    await expect.poll(() => screen(page)).toBe("result");
    expect(await page.locator("#error-message").innerText()).toBe(message);
    const steps = await page.$$eval(".steps li", (els) =>
      els.map((e) => ({
        label: e.querySelector(".step-label")?.textContent,
        cls: e.className,
        checked: !!e.querySelector(".step-dot svg") && e.className.includes("done"),
      })),
    );
    expect(steps.map((s) => `${s.label}:${s.cls}`)).toEqual(["Speaker:done", "Setup code:current failed", "Sign in:", "Link:"]);
    expect(steps.filter((s) => s.checked).map((s) => s.label)).toEqual(["Speaker"]);
    expect(await page.locator(".steps li.failed").innerText()).toContain("(failed)");
    await shot(page, "16-result-wrong-code-tries-left");
    await page.locator("#retry").click();
    await expect.poll(() => screen(page)).toBe("setupCode");
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });
});

describe("Replace the account?", () => {
  const answers = async (page: Page) => (await calls(page)).filter((c) => c.cmd === "answer_account_switch").map((c) => c.args);

  /** Pairing 1 of the living-room speaker, signed in as Bob; the speaker asks. */
  async function toQuestion(page: Page): Promise<void> {
    await page.locator("#continue").click();
    await toProgress(page);
    await toAccountSwitch(page);
  }

  test("both accounts are shown, Keep has focus, Replace goes on to the linked result with Bob", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toQuestion(page);
    expect(await page.locator("h1").innerText()).toBe("Replace the Amazon account?");
    expect(await page.locator("#switch-question").innerText()).toBe(
      "Living room speaker is linked to Alice Example (alice@example.com). Replace it with Bob Example (bob@example.com)?",
    );
    expect(await page.locator("#current-account").innerText()).toContain("Alice Example (alice@example.com)");
    expect(await page.locator("#new-account").innerText()).toContain("Bob Example (bob@example.com)");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("keep-account");
    await shot(page, "12-replace-account");
    await page.locator("#replace-account").click();
    await expect.poll(() => answers(page)).toEqual([{ replace: true }]);
    await expect.poll(() => screen(page)).toBe("progress");
    await emitPairing(page, {
      type: "linked",
      pairingId: 1,
      speakerId: livingRoom.id,
      speakerName: livingRoom.name,
      userId: bob.userId,
      account: bob,
      totalMillis: 5234,
    });
    await expect.poll(() => screen(page)).toBe("result");
    expect(await page.locator("#account").innerText()).toContain("Bob Example (bob@example.com)");
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });

  test("Keep (here by Escape) leaves Alice linked and says Bob was not", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toQuestion(page);
    await page.keyboard.press("Escape");
    await expect.poll(() => answers(page)).toEqual([{ replace: false }]);
    await emitPairing(page, { type: "keptAccount", pairingId: 1, account: alice, notLinked: bob });
    await expect.poll(() => screen(page)).toBe("result");
    expect(await page.locator("h1").innerText()).toBe("Living room speaker is still linked to Alice Example");
    expect(await page.locator("#kept-message").innerText()).toBe(
      "Nothing changed: it stays linked to Alice Example (alice@example.com). Bob Example (bob@example.com) was not linked.",
    );
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("done");
    await shot(page, "13-kept-account");
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });

  test("an account known only by its id is named as an Amazon account, in the sentences and the card", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toQuestion(page);
    const unnamed = { userId: alice.userId, name: null, email: null, label: `Amazon account ${alice.userId}` };
    await page.locator("#keep-account").click();
    await expect.poll(() => answers(page)).toEqual([{ replace: false }]);
    await emitPairing(page, { type: "keptAccount", pairingId: 1, account: unnamed, notLinked: bob });
    await expect.poll(() => screen(page)).toBe("result");
    expect(await page.locator("h1").innerText()).toBe(`Living room speaker is still linked to Amazon account ${alice.userId}`);
    expect(await page.locator("#kept-message").innerText()).toBe(
      `Nothing changed: it stays linked to Amazon account ${alice.userId}. Bob Example (bob@example.com) was not linked.`,
    );
    // The card's caption already says "Amazon account": the line under it is the bare id.
    expect(await page.locator("#account .account-id").innerText()).toBe(alice.userId);
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });
});

describe("Settings", () => {
  test("shows the stored values, names the wrong field, saves", async () => {
    const { page, context } = await openApp(h());
    await page.locator("#open-settings").click();
    expect(await screen(page)).toBe("settings");
    expect(await page.locator("#clientId").inputValue()).toBe("amzn1.application-oa2-client.avspairdemo");
    expect(await page.locator("#region").inputValue()).toBe("na");
    await shot(page, "16-settings");

    // The developer's settings are under Advanced, closed while the client id is set.
    expect(await page.locator("#settings-advanced-toggle").getAttribute("aria-expanded")).toBe("false");
    expect(await page.locator("#clientId").isVisible()).toBe(false);
    await page.locator("#settings-advanced-toggle").click();
    await page.locator("#clientId").fill("has a space");
    await page.locator("#save").click();
    await expect.poll(() => page.locator("#clientId-error").innerText()).toContain("no spaces");
    expect(await page.locator("#clientId").getAttribute("aria-invalid")).toBe("true");

    await page.locator("#clientId").fill("amzn1.application-oa2-client.mine");
    await page.locator("#lwaBaseUrl").fill("localhost 8080");
    await page.locator("#save").click();
    await expect.poll(() => page.locator("#lwaBaseUrl-error").innerText()).toContain("not a URL");
    await shot(page, "17-settings-error");

    await page.locator("#lwaBaseUrl").fill("http://127.0.0.1:8080");
    await page.locator("#region").selectOption("eu");
    await page.locator("#save").click();
    await expect.poll(() => page.locator("#saved").innerText()).toBe("Saved");
    const saved = (await calls(page)).filter((c) => c.cmd === "save_settings").pop();
    expect(saved?.args).toEqual({
      settings: { clientId: "amzn1.application-oa2-client.mine", redirectUri: "", region: "eu", lwaBaseUrl: "http://127.0.0.1:8080" },
    });
    await page.keyboard.press("Escape");
    expect(await screen(page)).toBe("speakers");
    await context.close();
  });
});

describe("Readable at 200% zoom", () => {
  for (const name of ["speakers", "setupCode", "signIn", "result"] as const) {
    test(`${name}: no sideways scrolling, primary action reachable`, async () => {
      const { page, context } = await openApp(h(), { zoom: 2, scenario: { speakers: listOf(livingRoom, kitchen) } });
      if (name !== "speakers") {
        await page.locator("#continue").click();
        if (name !== "setupCode") await toSignIn(page);
        if (name === "result")
          await emitPairing(page, {
            type: "failed",
            pairingId: 1,
            error: { kind: "wrongSetupCode", title: "Wrong setup code", message: "Wrong setup code: it does not match the speaker's (check the label).", retry: "newCode" },
          });
      }
      await expect.poll(() => screen(page)).toBe(name);
      await settle(page);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      const primary = page.locator(name === "signIn" ? "#open-sign-in" : name === "result" ? "#retry" : "#continue");
      await primary.scrollIntoViewIfNeeded();
      expect(await primary.isVisible()).toBe(true);
      const box = await primary.boundingBox();
      const vw = page.viewportSize()!.width;
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(vw);
      await shot(page, `zoom200-${name}`);
      await context.close();
    });
  }
});

describe("Wi-Fi", () => {
  const scan: WifiNetworkView[] = [
    { index: 0, ssid: "Home-5G", signal: 82, secured: true, supported: true, known: false },
    { index: 1, ssid: "Office-Guest", signal: 64, secured: true, supported: true, known: true },
    { index: 2, ssid: "Corp-8021X", signal: 51, secured: true, supported: false, known: false },
    { index: 3, ssid: "Library", signal: 30, secured: false, supported: true, known: false },
  ];
  const ask = (lastError: string | null = null, lastNetwork: number | null = null): PairingEvent => ({
    type: "wifiChoose",
    pairingId: 1,
    networks: scan,
    lastError,
    lastNetwork,
  });

  /** From the setup code to the Wi-Fi screen of pairing 1. */
  async function toWifi(page: Page): Promise<void> {
    await toSetupCode(page);
    await toProgress(page);
    await emitPairing(page, ...through(1, "connect", "secure"), ask());
    await expect.poll(() => screen(page)).toBe("wifi");
  }

  const chosen = async (page: Page) => (await calls(page)).filter((c) => c.cmd === "choose_wifi").map((c) => c.args.choice as Record<string, unknown>);
  const focusedId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? "");

  test("list -> wrong password stays on the screen, focused, with the reason -> right password goes on to the sign-in", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toWifi(page);
    // The list: every scanned network and "Other network…"; signal, lock and known marked.
    const rows = page.locator("#wifi-list .wifi-row");
    expect(await rows.count()).toBe(5);
    expect(await page.locator('.wifi-row[data-ssid="Home-5G"] .wifi-lock').count()).toBe(1);
    expect(await page.locator('.wifi-row[data-ssid="Library"] .wifi-lock').count()).toBe(0);
    expect(await page.locator('.wifi-row[data-ssid="Home-5G"] .signal .on').count()).toBe(4);
    expect(await page.locator('.wifi-row[data-ssid="Library"] .signal .on').count()).toBe(2);
    expect(await page.locator('.wifi-row[data-ssid="Office-Guest"]').innerText()).toContain("Known");
    expect(await page.locator('.wifi-row[data-ssid="Corp-8021X"]').innerText()).toContain("Can't join");
    expect(await page.locator("#wifi-1").isChecked()).toBe(true); // the known one is preselected
    expect(await page.locator("#wifi-2").isDisabled()).toBe(true);
    expect(await rows.last().innerText()).toContain("Other network…");
    const steps = await page.locator(".steps").innerText();
    expect(steps).toContain("Wi-Fi");

    // Home-5G with a wrong password; the show toggle reveals it.
    await page.locator('.wifi-row[data-ssid="Home-5G"]').click();
    await page.locator("#wifi-password").fill("wrong-pass");
    expect(await page.locator("#wifi-password").getAttribute("type")).toBe("password");
    await page.locator("#wifi-show").click();
    expect(await page.locator("#wifi-password").getAttribute("type")).toBe("text");
    expect(await page.locator("#wifi-show").getAttribute("aria-pressed")).toBe("true");
    await page.locator("#wifi-connect").click();
    await expect.poll(() => chosen(page)).toEqual([{ network: 0, hiddenSsid: null, password: "wrong-pass" }]);
    await emitPairing(page, { type: "wifiProgress", pairingId: 1, detail: "Checking the password" });
    await expect.poll(() => page.locator("#wifi-progress").isVisible()).toBe(true);
    expect(await page.locator("#wifi-progress").innerText()).toContain("Checking the password");
    expect(await page.locator("#wifi-connect").isDisabled()).toBe(true);

    // The speaker says why: same screen, the reason in words, the password field focused.
    await emitPairing(page, ask("Wrong password for Home-5G", 0));
    await expect.poll(() => page.locator("#wifi-error").isVisible()).toBe(true);
    expect(await screen(page)).toBe("wifi");
    expect(await page.locator("#wifi-error").innerText()).toBe("Wrong password for Home-5G");
    await expect.poll(() => focusedId(page)).toBe("wifi-password");
    expect(await page.locator("#wifi-0").isChecked()).toBe(true);
    expect(await page.locator("#wifi-progress").isVisible()).toBe(false);
    expect(await page.locator("#wifi-connect").isEnabled()).toBe(true);
    await shot(page, "wifi-wrong-password");

    // The right one, by keyboard: type over the selected text and press Enter.
    await page.keyboard.type("right-pass");
    await page.keyboard.press("Enter");
    await expect.poll(async () => (await chosen(page)).length).toBe(2);
    expect((await chosen(page))[1]).toEqual({ network: 0, hiddenSsid: null, password: "right-pass" });
    await emitPairing(
      page,
      { type: "wifiProgress", pairingId: 1, detail: "Checking that it reaches Amazon" },
      { type: "wifiJoined", pairingId: 1, detail: "on Home-5G at 192.0.2.20" },
      stage(1, "signIn", "active"),
      { type: "signIn", pairingId: 1, url: "http://127.0.0.1:8080/ap/oa?client_id=x&state=s", automatic: true },
    );
    await expect.poll(() => screen(page)).toBe("signIn");
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });

  test("Other network… asks for the name; an empty secured password is caught before the speaker", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toWifi(page);
    await page.locator('.wifi-row[data-ssid="Home-5G"]').click();
    await page.locator("#wifi-connect").click();
    expect(await page.locator("#wifi-error").innerText()).toBe("Enter the password for Home-5G.");
    expect(await focusedId(page)).toBe("wifi-password");
    expect(await chosen(page)).toEqual([]);
    await page.locator('.wifi-row[data-value="other"]').click();
    expect(await page.locator("#wifi-ssid").isVisible()).toBe(true);
    await page.locator("#wifi-ssid").fill("Attic");
    await page.locator("#wifi-password").fill("attic-pass");
    await page.locator("#wifi-connect").click();
    await expect.poll(() => chosen(page)).toEqual([{ network: null, hiddenSsid: "Attic", password: "attic-pass" }]);
    // Cancel from the Wi-Fi screen stops the pairing.
    await emitPairing(page, ask("Attic is not in range of the speaker", null));
    await expect.poll(() => page.locator("#wifi-error").innerText()).toBe("Attic is not in range of the speaker");
    await page.locator("#cancel").click();
    await expect.poll(async () => (await calls(page)).some((c) => c.cmd === "cancel_pairing")).toBe(true);
    await expect.poll(() => screen(page)).toBe("setupCode");
    await context.close();
  });

  test("phone size (390×844): no sideways scrolling, Connect reachable", async () => {
    const { page, context } = await openApp(h(), { width: 390, height: 844, scenario: { speakers: listOf(livingRoom) } });
    await toWifi(page);
    await page.locator('.wifi-row[data-ssid="Home-5G"]').click();
    await settle(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    for (const id of ["#wifi-connect", "#wifi-show", "#wifi-password"]) {
      const el = page.locator(id);
      await el.scrollIntoViewIfNeeded();
      const box = (await el.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    await shot(page, "phone-wifi");
    await context.close();
  });
});
