// What a first-time user meets, in plain words (issue 15.10): developer material (agent
// commands, millisecond timings, the client id and LWA settings) only behind "Advanced"
// disclosures that are closed by default and work from the keyboard; an empty list that says
// what to do on the speaker and searches again for real (search_again); an offline speaker
// marked in the list; once linked, a first thing to say; and failures without CLI commands, the
// core's exact sentence under Advanced.

import { describe, expect, test } from "vitest";
import type { Page } from "playwright-core";
import { calls, emitPairing, emitSpeakers, listOf, livingRoom, openApp, harnessPerFile, pageErrors } from "./browser";
import { exchanging, linked, screenOf, toProgress, toSetupCode, toSignIn } from "./flow";

const h = harnessPerFile();

/** Developer words a person should not meet outside an open Advanced panel. */
const DEVELOPER_WORDS = [/avs-device-agent/, /avs-companion/, /\d+ ms\b/, /\d+\.\d s\b/, /amzn1\.application/, /client id/i, /LWA/];

/** The screen's visible text (innerText skips hidden panels). */
const visibleText = (page: Page) => page.locator("#screen").innerText();

function developerWordsIn(text: string): string[] {
  return DEVELOPER_WORDS.filter((re) => re.test(text)).map(String);
}

async function expectClosedDisclosure(page: Page, id: string): Promise<void> {
  const toggle = page.locator(`#${id}-toggle`);
  expect(await toggle.evaluate((el) => el.tagName)).toBe("BUTTON");
  expect(await toggle.getAttribute("aria-expanded")).toBe("false");
  expect(await toggle.getAttribute("aria-controls")).toBe(id);
  expect(await page.locator(`#${id}`).isVisible()).toBe(false);
}

/** Tabs (at most `max` times) until the element `id` has focus; fails if it never does. */
async function tabTo(page: Page, id: string, max = 20): Promise<void> {
  for (let i = 0; i < max; i++) {
    if ((await page.evaluate(() => document.activeElement?.id)) === id) return;
    await page.keyboard.press("Tab");
  }
  expect(await page.evaluate(() => document.activeElement?.id)).toBe(id);
}

describe("developer material is under Advanced", () => {
  test("empty list: the agent commands are behind a closed, keyboard-operable Advanced", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf() } });
    await page.locator("#empty-state").waitFor();
    expect(developerWordsIn(await visibleText(page))).toEqual([]);
    await expectClosedDisclosure(page, "empty-advanced");
    // Keyboard: Tab reaches the toggle, Enter opens it, Space closes it again.
    await tabTo(page, "empty-advanced-toggle");
    await page.keyboard.press("Enter");
    expect(await page.locator("#empty-advanced-toggle").getAttribute("aria-expanded")).toBe("true");
    expect(await page.locator("#empty-advanced").innerText()).toContain("avs-device-agent pair");
    await page.keyboard.press(" ");
    expect(await page.locator("#empty-advanced-toggle").getAttribute("aria-expanded")).toBe("false");
    expect(await page.locator("#empty-advanced").isVisible()).toBe(false);
    await context.close();
  });

  test("progress and linked: no timings or ids in view until Advanced is opened", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toSetupCode(page);
    expect(developerWordsIn(await visibleText(page))).toEqual([]);
    await toProgress(page);
    await toSignIn(page);
    expect(developerWordsIn(await visibleText(page))).toEqual([]);
    await emitPairing(page, ...exchanging());
    await expect.poll(() => screenOf(page)).toBe("progress");
    await expect.poll(() => page.locator('[data-stage="handOver"]').getAttribute("class")).toContain("done");
    expect(developerWordsIn(await visibleText(page))).toEqual([]);
    await expectClosedDisclosure(page, "progress-advanced");
    await page.locator("#progress-advanced-toggle").click();
    // The helper's stage() events say 42 ms for each finished stage.
    expect(await page.locator("#timings").innerText()).toContain("Connected to the speaker");
    expect(await page.locator("#timings").innerText()).toContain("42 ms");

    await emitPairing(page, linked(1));
    await expect.poll(() => screenOf(page)).toBe("result");
    await expectClosedDisclosure(page, "result-advanced");
    expect(await visibleText(page)).not.toContain("Set up in");
    await page.locator("#result-advanced-toggle").click();
    expect(await page.locator("#setup-time").innerText()).toBe("Set up in 5.2 s.");
    await context.close();
  });

  test("settings: the region in view, the client id and LWA settings under a closed Advanced", async () => {
    const { page, context } = await openApp(h());
    await page.locator("#open-settings").click();
    expect(await screenOf(page)).toBe("settings");
    expect(await page.locator("#region").isVisible()).toBe(true);
    expect(developerWordsIn(await visibleText(page))).toEqual([]);
    await expectClosedDisclosure(page, "settings-advanced");
    await page.locator("#settings-advanced-toggle").click();
    for (const id of ["clientId", "redirectUri", "lwaBaseUrl"]) expect(await page.locator(`#${id}`).isVisible()).toBe(true);
    await context.close();
  });

  test("settings without a client id: Advanced starts open at the missing field", async () => {
    const { page, context } = await openApp(h(), { scenario: { settings: { clientId: "", ready: false } } });
    await page.locator("#settings-note button").click();
    expect(await page.locator("#settings-advanced-toggle").getAttribute("aria-expanded")).toBe("true");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("clientId");
    await context.close();
  });
});

describe("the empty list says what to do", () => {
  test("steps on the speaker, then Search again really asks for a new search and shows what it found", async () => {
    const { page, context } = await openApp(h(), {
      scenario: { speakers: listOf(), searchAgain: listOf(livingRoom) },
    });
    await page.locator("#empty-state").waitFor();
    const steps = await page.locator("#empty-steps").innerText();
    expect(steps).toContain("Press the pairing button");
    expect(steps).toContain("15 minutes");
    expect(steps).toContain("Search again");
    expect((await calls(page)).map((c) => c.cmd)).not.toContain("search_again");
    // By keyboard: Tab to the button, Enter.
    await tabTo(page, "search-again");
    await page.keyboard.press("Enter");
    await expect.poll(async () => (await calls(page)).filter((c) => c.cmd === "search_again").length).toBe(1);
    // What the search found is listed, preselected, and has focus (the button is gone).
    await page.locator(`[data-id="${livingRoom.id}"]`).waitFor();
    expect(await page.locator(`#speaker-${livingRoom.id}`).isChecked()).toBe(true);
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement).value)).toBe(livingRoom.id);
    expect(await page.locator("#announcer").innerText()).toBe("Searched again: 1 speaker found.");
    expect(pageErrors(page)).toEqual([]);
    await context.close();
  });

  test("Search again that finds nothing says so and keeps the focus on the button", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf() } });
    await page.locator("#search-again").click();
    await expect.poll(async () => (await calls(page)).filter((c) => c.cmd === "search_again").length).toBe(1);
    await expect.poll(() => page.locator("#announcer").innerText()).toBe("Searched again: no speakers yet.");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("search-again");
    expect(await page.locator("#search-again").innerText()).toBe("Search again");
    await context.close();
  });
});

describe("Search again with speakers listed", () => {
  test("left of Continue once a speaker is listed; it asks for a new search and shows the new find", async () => {
    const kitchenOpen = { ...livingRoom, id: "e5f6a7b9", name: "Kitchen speaker" };
    const { page, context } = await openApp(h(), {
      scenario: { speakers: listOf(), searchAgain: listOf(kitchenOpen, livingRoom) },
    });
    await page.locator("#empty-state").waitFor();
    // Empty: the list's own button; the one in the actions row is not there for anyone.
    expect(await page.locator("#search-again-list").isVisible()).toBe(false);
    await emitSpeakers(page, listOf(livingRoom));
    await page.locator(`[data-id="${livingRoom.id}"]`).waitFor();
    expect(await page.locator("#search-again-list").isVisible()).toBe(true);
    await page.locator("#search-again-list").click();
    await expect.poll(async () => (await calls(page)).filter((c) => c.cmd === "search_again").length).toBe(1);
    await page.locator(`[data-id="${kitchenOpen.id}"]`).waitFor();
    await expect.poll(() => page.locator("#announcer").innerText()).toBe("Searched again: 2 speakers found.");
    await context.close();
  });
});

describe("plain-words details", () => {
  test("a speaker that says it is offline is marked in the list", async () => {
    const offline = { ...livingRoom, id: "c0ffee01", name: "Bedroom speaker", needsNetwork: true };
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(offline, livingRoom) } });
    await page.locator(`[data-id="${offline.id}"]`).waitFor();
    expect(await page.locator(`#speaker-${offline.id}-offline`).innerText()).toBe(
      "Not online yet: you'll choose its Wi-Fi network during setup.",
    );
    expect(await page.locator(`#speaker-${livingRoom.id}-offline`).count()).toBe(0);
    // Still choosable: the Wi-Fi screen comes during setup.
    expect(await page.locator(`#speaker-${offline.id}`).isDisabled()).toBe(false);
    await context.close();
  });

  test("linked: a first thing to say", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toSetupCode(page);
    await toProgress(page);
    await emitPairing(page, linked(1));
    await expect.poll(() => screenOf(page)).toBe("result");
    expect(await page.locator("#first-words").isVisible()).toBe(true);
    expect(await page.locator("#first-words").innerText()).toBe("Try it: say “Alexa, what time is it?”");
    await context.close();
  });
});

describe("failures in people's words", () => {
  test("the result shows the sentence without commands; the exact one is under Advanced", async () => {
    // As errors.rs sends it: message = the core error's Words::plain, detail = its terminal sentence.
    const error = {
      kind: "notPairable",
      title: "The speaker isn't accepting pairing",
      message: "The speaker's pairing window closed before the code arrived; reopen pairing on the speaker and try again.",
      detail:
        "The speaker's pairing window closed before the code arrived; reopen pairing on the speaker (its pairing button, or `avs-device-agent pair` on it) and run pair again.",
      retry: "chooseSpeaker",
    } as const;
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toSetupCode(page);
    await toProgress(page);
    await emitPairing(page, { type: "failed", pairingId: 1, error });
    await expect.poll(() => screenOf(page)).toBe("result");
    expect(await page.locator("#error-message").innerText()).toBe(error.message);
    expect(developerWordsIn(await visibleText(page))).toEqual([]);
    await expectClosedDisclosure(page, "result-error-advanced");
    await page.locator("#result-error-advanced-toggle").click();
    expect(await page.locator("#error-detail").innerText()).toBe(error.detail);
    await context.close();
  });

  test("a failure with nothing left out has no Advanced", async () => {
    const { page, context } = await openApp(h(), { scenario: { speakers: listOf(livingRoom) } });
    await toSetupCode(page);
    await toProgress(page);
    await emitPairing(page, {
      type: "failed",
      pairingId: 1,
      error: { kind: "wrongSetupCode", title: "Wrong setup code", message: "Wrong setup code: 19 tries left.", detail: null, retry: "newCode" },
    });
    await expect.poll(() => screenOf(page)).toBe("result");
    expect(await page.locator("#result-error-advanced-toggle").count()).toBe(0);
    await context.close();
  });
});
