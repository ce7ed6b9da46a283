import { describe, expect, test } from "vitest";
import { duration, formatCodeInput, freshness, isFresh, seenAgo, speakerStatus } from "../../src/format";
import type { SpeakerView } from "../../src/ipc";

describe("format", () => {
  test("seen ago", () => {
    expect(seenAgo(1000, 3000)).toBe("just now");
    expect(seenAgo(0, 12_000)).toBe("12 s ago");
    expect(seenAgo(0, 185_000)).toBe("3 min ago");
    expect(seenAgo(0, 7_300_000)).toBe("2 h ago");
    expect(isFresh(0, 119_000)).toBe(true);
    expect(isFresh(0, 121_000)).toBe(false);
  });

  test("setup code grouping", () => {
    expect(formatCodeInput("2468")).toBe("2468");
    expect(formatCodeInput("246813")).toBe("2468 13");
    expect(formatCodeInput("2468-1357")).toBe("2468 1357");
    expect(formatCodeInput("246813574")).toBe("2468-1357-4");
    expect(formatCodeInput("2468135741")).toBe("2468-1357-4");
    expect(formatCodeInput("AVSPAIR:1:x:1")).toBe("AVSPAIR:1:x:1");
  });

  test("durations", () => {
    expect(duration(85.4)).toBe("85 ms");
    expect(duration(1234)).toBe("1.2 s");
  });

  test("speaker status", () => {
    const s: SpeakerView = { id: "a", name: "A", transports: ["wifi"], address: null, paired: false, window: "open", lastSeenMs: 0, live: false, needsNetwork: false };
    expect(freshness({ ...s, live: true }, 999_999).text).toBe("active now");
    expect(freshness(s, 185_000)).toEqual({ text: "checked 3 min ago", fresh: false });
    expect(speakerStatus(s).pairable).toBe(true);
    expect(speakerStatus({ ...s, window: "closed" }).pairable).toBe(false);
    expect(speakerStatus({ ...s, window: "lockedOut" }).label).toBe("Locked");
    expect(speakerStatus({ ...s, paired: true }).label).toContain("Linked");
  });
});
