// Test harness: the real UI with the Tauri IPC replaced by mockIPC from @tauri-apps/api/mocks
// and a scripted backend that answers the commands of src/ipc.ts and emits its events.
// Tests (app.test.ts) configure it through window.__scenario before load and drive it through
// window.mock afterwards.

import { mockIPC } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import type {
  CommandError,
  PairingEvent,
  SettingsInput,
  SettingsView,
  SetupCodeCheck,
  SpeakersView,
} from "../../src/ipc";
import { EVENTS } from "../../src/ipc";

export interface Scenario {
  settings?: Partial<SettingsView>;
  speakers?: SpeakersView;
  /** Commands that fail with this error (by command name). */
  fail?: Record<string, CommandError>;
  /** What search_again finds (default: the list as it is). */
  searchAgain?: SpeakersView;
}

declare global {
  interface Window {
    __scenario?: Scenario;
    mock: MockBackend;
  }
}

// Verhoeff, as the Rust side's setup code parser uses it (only for answering check_setup_code).
const D = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
  [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
  [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
  [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const P = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
  [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
  [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];
export function verhoeffValid(digits: string): boolean {
  let c = 0;
  [...digits].reverse().forEach((ch, i) => (c = D[c][P[i % 8][Number(ch)]]));
  return c === 0;
}

function checkCode(input: string): SetupCodeCheck {
  const t = input.trim();
  if (t.includes(":")) {
    const m = /^AVSPAIR:1:([A-Za-z0-9_-]+):(\d{9})$/.exec(t);
    return m && verhoeffValid(m[2])
      ? { status: "valid", format: "qr", message: "Setup code read from the QR code.", deviceId: m[1] }
      : { status: "invalid", format: "qr", message: "The QR code is damaged.", deviceId: null };
  }
  if (/[^0-9 -]/.test(t)) return { status: "invalid", format: null, message: "Use digits only (spaces and dashes are fine).", deviceId: null };
  const d = t.replace(/[^0-9]/g, "");
  if (d.length < 8) {
    const left = 8 - d.length;
    return { status: "incomplete", format: "digits", message: d.length ? `${left} more digit${left === 1 ? "" : "s"} to go.` : "", deviceId: null };
  }
  if (d.length === 8) {
    if (/^(\d)\1{7}$/.test(d) || d === "12345678" || d === "87654321")
      return { status: "invalid", format: "digits", message: "The setup code is too easy to guess.", deviceId: null };
    return { status: "valid", format: "digits", message: "8 digits.", deviceId: null };
  }
  if (d.length === 9)
    return verhoeffValid(d)
      ? { status: "valid", format: "manual", message: "Check digit matches.", deviceId: null }
      : { status: "invalid", format: "manual", message: "The last digit doesn't match the others: a digit was probably mistyped.", deviceId: null };
  return { status: "invalid", format: "digits", message: `That is ${d.length} digits: a setup code has 8, or 9 with the check digit.`, deviceId: null };
}

export class MockBackend {
  calls: { cmd: string; args: Record<string, unknown> }[] = [];
  settings: SettingsView;
  speakers: SpeakersView;
  fail: Record<string, CommandError>;
  searchAgain: SpeakersView | null;
  nextPairingId = 1;

  constructor(s: Scenario) {
    this.settings = {
      clientId: "amzn1.application-oa2-client.avspairdemo",
      redirectUri: "",
      region: "na",
      lwaBaseUrl: "",
      defaultRedirectUri: "http://127.0.0.1/authresponse",
      configPath: "/home/you/.config/avs-pair/companion.toml",
      ready: true,
      regions: [
        { region: "na", label: "North America" },
        { region: "eu", label: "Europe" },
        { region: "fe", label: "Far East" },
      ],
      ...s.settings,
    };
    this.speakers = s.speakers ?? { discovery: "searching", message: null, speakers: [] };
    this.fail = s.fail ?? {};
    this.searchAgain = s.searchAgain ?? null;
  }

  commands(): string[] {
    return this.calls.map((c) => c.cmd);
  }

  async handle(cmd: string, args: Record<string, unknown>): Promise<unknown> {
    // check_setup_code is called per keystroke; keep the log readable.
    this.calls.push({ cmd, args: cmd === "check_setup_code" ? {} : args });
    const failure = this.fail[cmd];
    if (failure) throw failure;
    switch (cmd) {
      case "get_settings":
        return this.settings;
      case "save_settings": {
        const i = args.settings as SettingsInput;
        if (i.clientId.includes(" ")) throw { message: "a client id has no spaces", field: "clientId" } satisfies CommandError;
        if (i.lwaBaseUrl && !/^https?:\/\//.test(i.lwaBaseUrl))
          throw { message: "not a URL: write it like http://127.0.0.1:8080", field: "lwaBaseUrl" } satisfies CommandError;
        this.settings = { ...this.settings, ...i, ready: i.clientId.trim() !== "" };
        return this.settings;
      }
      case "start_discovery":
        return this.speakers;
      case "search_again":
        if (this.searchAgain) this.speakers = this.searchAgain;
        return this.speakers;
      case "add_speaker": {
        const address = String(args.address);
        if (!/^\d+\.\d+\.\d+\.\d+:\d+$/.test(address)) throw { message: "That is not an IP address and port, like 192.168.1.20:4100.", field: null };
        const speaker = {
          id: "manual-1",
          name: "Office speaker",
          transports: ["address" as const],
          address,
          paired: false,
          window: "open" as const,
          lastSeenMs: Date.now(),
          live: false,
          needsNetwork: false,
        };
        this.speakers = { ...this.speakers, speakers: [...this.speakers.speakers, speaker] };
        void this.emitSpeakers(this.speakers);
        return speaker;
      }
      case "check_setup_code":
        return checkCode(String(args.code));
      case "start_pairing":
      case "retry_pairing": {
        const s = this.speakers.speakers.find((x) => x.id === args.speakerId);
        return { pairingId: this.nextPairingId++, speakerName: s?.name ?? "Living room speaker" };
      }
      case "open_sign_in":
      case "paste_redirect":
        return null;
      case "cancel_pairing":
        return true;
      case "choose_wifi":
      case "answer_account_switch":
        return null;
      default:
        throw { message: `unknown command ${cmd}`, field: null };
    }
  }

  async emitSpeakers(view: SpeakersView): Promise<void> {
    this.speakers = view;
    await emit(EVENTS.speakers, view);
  }

  async emitPairing(ev: PairingEvent): Promise<void> {
    await emit(EVENTS.pairing, ev);
  }
}

const backend = new MockBackend(window.__scenario ?? {});
window.mock = backend;
mockIPC((cmd, args) => backend.handle(cmd, (args ?? {}) as Record<string, unknown>), { shouldMockEvents: true });
await import("../../src/main");
