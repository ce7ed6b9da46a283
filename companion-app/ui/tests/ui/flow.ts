// Steps and checks the UI tests share (app.test.ts, plain.test.ts, phone.test.ts):
// driving the mocked app to a screen, and measuring what a person on a phone meets there.

import { expect } from "vitest";
import type { Page } from "playwright-core";
import type { AccountView, PairingErrorView, PairingEvent, WifiNetworkView } from "../../src/ipc";
import { emitPairing, livingRoom, settle, stage } from "./browser";

export const screenOf = (page: Page) => page.locator("#screen").getAttribute("data-screen");

export async function typeCode(page: Page, code: string): Promise<void> {
  await page.locator("#setup-code").fill("");
  await page.locator("#setup-code").pressSequentially(code, { delay: 5 });
}

/** From the speakers list (living room preselected) to the setup code screen. */
export async function toSetupCode(page: Page): Promise<void> {
  await page.locator("#continue").click();
  await expect.poll(() => screenOf(page)).toBe("setupCode");
}

/** From the speakers list to Settings with Advanced open: the developer's fields in view. */
export async function toAdvancedSettings(page: Page): Promise<void> {
  await page.locator("#open-settings").click();
  await expect.poll(() => screenOf(page)).toBe("settings");
  await page.locator("#settings-advanced-toggle").click();
}

/** From the setup code screen to Progress of pairing `id`. */
export async function toProgress(page: Page): Promise<void> {
  await typeCode(page, "24681357");
  await expect.poll(() => page.locator("#continue").isEnabled()).toBe(true);
  await page.locator("#continue").click();
  await expect.poll(() => screenOf(page)).toBe("progress");
}

export const SIGN_IN_URL = "http://127.0.0.1:8080/ap/oa?client_id=x&state=s";

type StageName = Parameters<typeof stage>[1];

/** `active` then `done` for each of `stages` of pairing `id`: the steps it went through. */
export function through(id: number, ...stages: StageName[]): PairingEvent[] {
  return stages.flatMap((s) => [stage(id, s, "active"), stage(id, s, "done")]);
}

/** After the sign-in of pairing `id`: signed in, the code handed over, the exchange running. */
export function exchanging(id = 1, detail: string | null = null): PairingEvent[] {
  return [stage(id, "signIn", "done"), ...through(id, "handOver"), stage(id, "exchange", "active", detail)];
}

/** From Progress to the sign-in screen. */
export async function toSignIn(page: Page, id = 1, automatic = true): Promise<void> {
  await emitPairing(
    page,
    ...through(id, "connect", "secure"),
    stage(id, "signIn", "active"),
    { type: "signIn", pairingId: id, url: SIGN_IN_URL, automatic },
  );
  await expect.poll(() => screenOf(page)).toBe("signIn");
}

export const alice: AccountView = {
  userId: "amzn1.account.AEXAMPLEALICE000000000000000",
  name: "Alice Example",
  email: "alice@example.com",
  label: "Alice Example (alice@example.com)",
};
export const bob: AccountView = {
  userId: "amzn1.account.AEXAMPLEBOB00000000000000000",
  name: "Bob Example",
  email: "bob@example.com",
  label: "Bob Example (bob@example.com)",
};

/** From Progress of pairing 1, signed in as Bob, to the speaker's question: replace Alice? */
export async function toAccountSwitch(page: Page): Promise<void> {
  await toSignIn(page);
  await emitPairing(page, ...exchanging());
  await emitPairing(page, { type: "confirmAccountSwitch", pairingId: 1, current: alice, new: bob });
  await expect.poll(() => screenOf(page)).toBe("accountSwitch");
}

export function linked(id = 1): PairingEvent {
  return {
    type: "linked",
    pairingId: id,
    speakerId: livingRoom.id,
    speakerName: livingRoom.name,
    userId: "amzn1.account.AEXAMPLEALICE000000000000000",
    totalMillis: 5234,
  } as PairingEvent;
}

export const wrongCode: PairingErrorView = {
  kind: "wrongSetupCode",
  title: "Wrong setup code",
  message: "Wrong setup code: it does not match the speaker's. Check the label under the speaker and type it again.",
  retry: "newCode",
} as PairingErrorView;

export const wifiScan: WifiNetworkView[] = [
  { index: 0, ssid: "Home-5G", signal: 82, secured: true, supported: true, known: false },
  { index: 1, ssid: "Office-Guest", signal: 64, secured: true, supported: true, known: true },
  { index: 2, ssid: "Corp-8021X", signal: 51, secured: true, supported: false, known: false },
];

/** Columns of horizontal overflow (0 = nothing scrolls sideways). */
export function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Visible tap targets smaller than `min` px in either direction, described for the failure. */
export async function smallTargets(page: Page, min = 44): Promise<string[]> {
  await settle(page);
  return page.evaluate((min) => {
    const sel = [
      "button",
      "a[href]",
      "select",
      "textarea",
      "summary",
      "input:not([type=radio]):not([type=checkbox]):not([type=hidden])",
      "label.speaker-row",
    ].join(",");
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll<HTMLElement>(sel))) {
      if (el.getClientRects().length === 0) continue; // not rendered (hidden)
      const r = el.getBoundingClientRect();
      if (r.width <= 2 || r.height <= 2) continue; // visually hidden helpers
      // Sub-pixel layout: 43.99 counts as 44.
      if (Math.round(r.width) < min || Math.round(r.height) < min) {
        const name = el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${el.className}`;
        out.push(`${name} "${(el.innerText || el.getAttribute("aria-label") || "").trim().slice(0, 30)}" ${Math.round(r.width)}x${Math.round(r.height)}`);
      }
    }
    return out;
  }, min);
}

/**
 * Focuses each visible text field in turn, as a tap would, and returns those that end up outside
 * the top `share` of the window: the part an on-screen keyboard (the bottom ~40%) leaves free.
 */
export async function fieldsUnderKeyboard(page: Page, share = 0.6): Promise<string[]> {
  const ids = await page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLInputElement>("input, textarea"))
      .filter((el) => el.getClientRects().length > 0 && !["radio", "checkbox", "hidden"].includes(el.type))
      .filter((el) => el.getBoundingClientRect().width > 2)
      .map((el) => el.id),
  );
  expect(ids.every((id) => id !== "")).toBe(true);
  const bad: string[] = [];
  for (const id of ids) {
    // Start from the top with nothing focused, as a freshly shown screen does, then tap the
    // field (focus).
    await page.evaluate(() => {
      (document.activeElement as HTMLElement | null)?.blur();
      window.scrollTo({ top: 0, behavior: "instant" as ScrollBehavior });
    });
    await page.locator(`#${id}`).focus();
    await settle(page);
    const r = await page.evaluate(
      ({ id, share }) => {
        const el = document.getElementById(id)!;
        const b = el.getBoundingClientRect();
        return { top: b.top, bottom: b.bottom, limit: window.innerHeight * share, focused: document.activeElement === el };
      },
      { id, share },
    );
    if (!r.focused || r.top < 0 || r.bottom > r.limit) bad.push(`#${id} at ${Math.round(r.top)}-${Math.round(r.bottom)} (free: 0-${Math.round(r.limit)})`);
  }
  return bad;
}

/** The phone checks of one screen: no sideways scroll, 44 px targets, fields above the keyboard. */
export async function expectPhoneFriendly(page: Page, opts: { fields?: number } = {}): Promise<void> {
  await settle(page);
  expect(await sidewaysOverflow(page)).toBeLessThanOrEqual(0);
  expect(await smallTargets(page)).toEqual([]);
  if (opts.fields !== undefined) {
    const count = await page.evaluate(
      () =>
        Array.from(document.querySelectorAll<HTMLInputElement>("input, textarea")).filter(
          (el) => el.getClientRects().length > 0 && !["radio", "checkbox", "hidden"].includes(el.type) && el.getBoundingClientRect().width > 2,
        ).length,
    );
    expect(count).toBe(opts.fields);
    expect(await fieldsUnderKeyboard(page)).toEqual([]);
  }
  expect(await sidewaysOverflow(page)).toBeLessThanOrEqual(0);
}
