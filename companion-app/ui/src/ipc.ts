// The contract with the Rust side: every command and event, typed. Mirrors
// companion-app/src-tauri/src/ipc.rs field for field (camelCase on the wire); change both together.
//
// Nothing secret comes back from Rust: no authorization code, token or verifier. The setup code
// goes to Rust twice at most: while typed (checkSetupCode, not stored) and once in startPairing.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export type Transport = "wifi" | "ble" | "address";
export type WindowState = "open" | "closed" | "lockedOut";
export type DiscoveryMode = "searching" | "off" | "failed";
export type Region = "na" | "eu" | "fe";
export type SettingsField = "clientId" | "redirectUri" | "lwaBaseUrl";
export type CodeStatus = "incomplete" | "valid" | "invalid";
export type CodeFormat = "digits" | "manual" | "qr";
export type Stage = "connect" | "secure" | "signIn" | "handOver" | "exchange";
export type StageState = "active" | "done";
export type ErrorKind =
  | "wrongSetupCode"
  | "notPairable"
  | "unreachable"
  | "signInCancelled"
  | "signInFailed"
  | "amazonRefused"
  | "incompatible"
  | "settings"
  | "failure";
export type RetryMode = "sameCode" | "newCode" | "settings" | "chooseSpeaker";

export interface SpeakerView {
  id: string;
  name: string;
  transports: Transport[];
  address: string | null;
  paired: boolean;
  window: WindowState;
  /** Milliseconds since the Unix epoch. */
  lastSeenMs: number;
  /** A discovery transport holds a live record of it ("active now"). */
  live: boolean;
}

export interface SpeakersView {
  discovery: DiscoveryMode;
  message: string | null;
  speakers: SpeakerView[];
}

export interface SettingsView {
  clientId: string;
  redirectUri: string;
  region: Region;
  lwaBaseUrl: string;
  defaultRedirectUri: string;
  configPath: string;
  ready: boolean;
}

export interface SettingsInput {
  clientId: string;
  redirectUri: string;
  region: Region;
  lwaBaseUrl: string;
}

export interface SetupCodeCheck {
  status: CodeStatus;
  format: CodeFormat | null;
  message: string;
  deviceId: string | null;
}

export interface PairingStarted {
  pairingId: number;
  speakerName: string;
}

export interface PairingErrorView {
  kind: ErrorKind;
  title: string;
  message: string;
  retry: RetryMode;
}

export type PairingEvent =
  | {
      type: "stage";
      pairingId: number;
      stage: Stage;
      state: StageState;
      detail: string | null;
      millis: number | null;
    }
  | { type: "signIn"; pairingId: number; url: string; automatic: boolean }
  | { type: "browserOpened"; pairingId: number }
  | { type: "retrying"; pairingId: number; attempt: number; reason: string }
  | {
      type: "linked";
      pairingId: number;
      speakerId: string;
      speakerName: string;
      userId: string | null;
      totalMillis: number;
    }
  | { type: "failed"; pairingId: number; error: PairingErrorView }
  | { type: "cancelled"; pairingId: number };

/** A command's error. */
export interface CommandError {
  message: string;
  field: SettingsField | null;
}

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
  addSpeaker: (address: string) => call<SpeakerView>("add_speaker", { address }),
  checkSetupCode: (code: string) => call<SetupCodeCheck>("check_setup_code", { code }),
  startPairing: (speakerId: string, setupCode: string) =>
    call<PairingStarted>("start_pairing", { speakerId, setupCode }),
  retryPairing: () => call<PairingStarted>("retry_pairing"),
  openSignIn: () => call<null>("open_sign_in"),
  pasteRedirect: (url: string) => call<null>("paste_redirect", { url }),
  cancelPairing: () => call<boolean>("cancel_pairing"),
};

export type Commands = typeof commands;

export function onSpeakers(handler: (view: SpeakersView) => void): Promise<UnlistenFn> {
  return listen<SpeakersView>(EVENTS.speakers, (e) => handler(e.payload));
}

export function onPairing(handler: (event: PairingEvent) => void): Promise<UnlistenFn> {
  return listen<PairingEvent>(EVENTS.pairing, (e) => handler(e.payload));
}
