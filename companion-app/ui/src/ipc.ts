// The contract with the Rust side: every command and event, typed. The types are generated from
// companion-app/src-tauri/src/ipc.rs into ./bindings.ts (ts-rs; `cargo test -p avs-companion-app`
// fails while that file is stale): never edit them here.
//
// Nothing secret comes back from Rust: no authorization code, token or verifier. The setup code
// goes to Rust twice at most: while typed (checkSetupCode, not stored) and once in startPairing.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  CommandError,
  PairingEvent,
  PairingStarted,
  SettingsInput,
  SettingsView,
  SetupCodeCheck,
  SpeakerView,
  SpeakersView,
  WifiChoiceInput,
} from "./bindings";

export type * from "./bindings";
/** The region values (generated as RegionView). */
export type { RegionView as Region } from "./bindings";

export const EVENTS = { speakers: "speakers", pairing: "pairing" } as const;

/** Turns whatever a rejected invoke carried into a CommandError. */
export function asCommandError(e: unknown): CommandError {
  if (e && typeof e === "object" && "message" in e && typeof (e as CommandError).message === "string") {
    const err = e as Partial<CommandError>;
    return { message: err.message ?? "Something went wrong.", field: err.field ?? null };
  }
  if (typeof e === "string") return { message: e, field: null };
  return { message: "Something went wrong.", field: null };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw asCommandError(e);
  }
}

export const commands = {
  getSettings: () => call<SettingsView>("get_settings"),
  saveSettings: (settings: SettingsInput) => call<SettingsView>("save_settings", { settings }),
  startDiscovery: () => call<SpeakersView>("start_discovery"),
  searchAgain: () => call<SpeakersView>("search_again"),
  addSpeaker: (address: string) => call<SpeakerView>("add_speaker", { address }),
  checkSetupCode: (code: string) => call<SetupCodeCheck>("check_setup_code", { code }),
  startPairing: (speakerId: string, setupCode: string) =>
    call<PairingStarted>("start_pairing", { speakerId, setupCode }),
  retryPairing: () => call<PairingStarted>("retry_pairing"),
  openSignIn: () => call<null>("open_sign_in"),
  pasteRedirect: (url: string) => call<null>("paste_redirect", { url }),
  cancelPairing: () => call<boolean>("cancel_pairing"),
  chooseWifi: (choice: WifiChoiceInput) => call<null>("choose_wifi", { choice }),
  answerAccountSwitch: (replace: boolean) => call<null>("answer_account_switch", { replace }),
};

export type Commands = typeof commands;

export function onSpeakers(handler: (view: SpeakersView) => void): Promise<UnlistenFn> {
  return listen<SpeakersView>(EVENTS.speakers, (e) => handler(e.payload));
}

export function onPairing(handler: (event: PairingEvent) => void): Promise<UnlistenFn> {
  return listen<PairingEvent>(EVENTS.pairing, (e) => handler(e.payload));
}
