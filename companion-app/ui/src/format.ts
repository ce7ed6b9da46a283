// Pure formatting helpers (unit-tested in tests/unit).

import type { SpeakerView, Transport } from "./ipc";

/** "just now", "12 s ago", "3 min ago", "2 h ago". */
export function seenAgo(lastSeenMs: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - lastSeenMs) / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  return `${Math.floor(m / 60)} h ago`;
}

/** A speaker counts as fresh when heard from in the last 2 minutes. */
export function isFresh(lastSeenMs: number, nowMs: number): boolean {
  return nowMs - lastSeenMs < 120_000;
}

/** The freshness line of a row: live discovery records are "active now". */
export function freshness(s: SpeakerView, nowMs: number): { text: string; fresh: boolean } {
  if (s.live) return { text: "active now", fresh: true };
  return { text: `checked ${seenAgo(s.lastSeenMs, nowMs)}`, fresh: isFresh(s.lastSeenMs, nowMs) };
}

const transportNames: Record<Transport, string> = {
  wifi: "Wi-Fi",
  ble: "Bluetooth",
  address: "Added by address",
};

export function transportText(transports: Transport[]): string {
  return transports.map((t) => transportNames[t]).join(" · ");
}

/** The status chip of a row and whether the row can be chosen. */
export function speakerStatus(s: SpeakerView): { label: string; tone: "ok" | "muted" | "warn"; pairable: boolean; hint: string } {
  if (s.window === "lockedOut") {
    return {
      label: "Locked",
      tone: "warn",
      pairable: false,
      hint: "Too many wrong setup codes. Wait, then reopen pairing on the speaker.",
    };
  }
  if (s.window === "closed") {
    return {
      label: s.paired ? "Linked" : "Not in pairing mode",
      tone: "muted",
      pairable: false,
      hint: "To set it up again, put it into pairing mode first.",
    };
  }
  return {
    label: s.paired ? "Linked · ready to relink" : "Ready to set up",
    tone: "ok",
    pairable: true,
    hint: "",
  };
}

/** Groups digits as the label prints them: "2468 1357" or "2468-1357-4". */
export function formatCodeInput(raw: string): string {
  if (raw.includes(":") || /[a-z]/i.test(raw)) return raw;
  const digits = raw.replace(/[^0-9]/g, "").slice(0, 9);
  if (digits.length <= 4) return digits;
  if (digits.length <= 8) return `${digits.slice(0, 4)} ${digits.slice(4)}`;
  return `${digits.slice(0, 4)}-${digits.slice(4, 8)}-${digits.slice(8)}`;
}

/** 1234 ms → "1.2 s"; 85 → "85 ms". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}
