// The docs' pictures of the speakers list, with lists a real mDNS discovery produced.
//
// The window e2e (tests/window_e2e.rs) can't search over mDNS: mDNS must not run in the root
// network namespace here, and its WebDriver talks to the window over loopback, so the window
// can't move into a test namespace. So the speakers list of `discovery_netns` (a real agent
// advertising in one namespace, the app's list code searching in another) is saved as the JSON
// the window receives (AVS_APP_DISCOVERY_FIXTURES=<dir>, see that test), committed under
// fixtures/, and rendered here by the real UI. The e2e's own pictures of the list (speaker added
// by address, discovery off) are not used in the docs.
//
// Pictures: test-results/docs-*.png, copied to docs/img/companion/ by hand.

import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import type { SpeakersView } from "../../src/ipc";
import { harnessPerFile, openApp, shot } from "./browser";

const h = harnessPerFile();

function fixture(name: string): SpeakersView {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")) as SpeakersView;
}

describe("speakers list from a real mDNS discovery run", () => {
  const empty = fixture("mdns-empty.json");
  const found = fixture("mdns-speakers.json");

  test("the recorded lists are what discovery sends: searching, then one speaker over Wi-Fi", () => {
    expect(empty.discovery).toBe("searching");
    expect(empty.speakers).toEqual([]);
    expect(found.discovery).toBe("searching");
    expect(found.speakers).toHaveLength(1);
    const [s] = found.speakers;
    expect(s.transports).toEqual(["wifi"]);
    expect(s.live).toBe(true);
    expect(s.window).toBe("open");
    expect(s.address).toMatch(/^\d+\.\d+\.\d+\.\d+:\d+$/);
  });

  for (const size of [
    { name: "", width: 920, height: 760 },
    { name: "phone-", width: 390, height: 844 },
  ]) {
    test(`${size.name || "desktop "}pictures: searching, then the speaker found`, async () => {
      const { page, context } = await openApp(h(), { width: size.width, height: size.height, scenario: { speakers: empty } });
      await page.locator("#empty-state").waitFor();
      expect(await page.locator("#discovery-status").innerText()).toContain("Searching this network");
      await shot(page, `docs-${size.name}speakers-empty`);

      await page.evaluate((v) => window.mock.emitSpeakers(v), found);
      const s = found.speakers[0];
      await page.locator(`[data-id="${s.id}"]`).waitFor();
      const row = await page.locator(`[data-id="${s.id}"]`).innerText();
      expect(row).toContain(s.name);
      expect(row).toContain("Wi-Fi");
      expect(row).toContain(s.address!);
      expect(row).toContain("active now");
      expect(await page.locator(`#speaker-${s.id}`).isChecked()).toBe(true);
      expect(await page.locator("#discovery-status").innerText()).toContain("1 speaker nearby");
      await shot(page, `docs-${size.name}speakers-list`);
      await context.close();
    });
  }
});
