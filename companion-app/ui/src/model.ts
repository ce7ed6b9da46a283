// The pairing's progress as the window shows it, built from the Rust side's events.
// Pure: no DOM, no IPC (unit-tested in tests/unit/model.test.ts).

import type { AccountView, PairingErrorView, PairingEvent, Stage, WifiNetworkView } from "./ipc";

export const STAGES: { id: Stage | "linked"; label: string; doneLabel: string }[] = [
  { id: "connect", label: "Connecting to the speaker", doneLabel: "Connected to the speaker" },
  { id: "secure", label: "Checking the setup code", doneLabel: "Setup code checked, link secured" },
  { id: "signIn", label: "Signing in with Amazon", doneLabel: "Signed in with Amazon" },
  { id: "handOver", label: "Handing the sign-in to the speaker", doneLabel: "Sign-in handed to the speaker" },
  { id: "exchange", label: "Speaker signing in to Amazon", doneLabel: "Speaker signed in to Amazon" },
  { id: "linked", label: "Linked", doneLabel: "Linked" },
];

export type StageStatus = "pending" | "active" | "done" | "failed";

export interface StageRow {
  status: StageStatus;
  detail: string | null;
  millis: number | null;
}

export interface Linked {
  speakerId: string;
  speakerName: string;
  userId: string | null;
  /** The account's name and e-mail too, when the speaker could read them. */
  account: AccountView | null;
  totalMillis: number;
}

/** The speaker is linked to another account than the one that signed in: Replace or Keep? */
export interface SwitchQuestion {
  current: AccountView;
  next: AccountView;
  /** The user answered; the speaker is finishing. */
  answered: boolean;
}

/** The Wi-Fi step: the speaker's scan and where the join is. */
export interface WifiModel {
  networks: WifiNetworkView[];
  /** Why the last join failed, in words; null the first time. */
  lastError: string | null;
  /** The network the last join tried (its index). */
  lastNetwork: number | null;
  /** How many times the speaker asked (a new question re-arms the screen). */
  asked: number;
  /** What the join is doing now ("Checking the password"); null before a join. */
  progress: string | null;
  /** "on Home-5G at 192.0.2.7" once joined. */
  joined: string | null;
}

export interface PairingModel {
  id: number;
  speakerName: string;
  stages: Record<Stage | "linked", StageRow>;
  /** `pasteError`: why the last pasted address was not taken (the user may paste again). */
  signIn: { url: string; automatic: boolean; opened: boolean; pasteError?: string | null } | null;
  retrying: string | null;
  wifi: WifiModel | null;
  switchQuestion: SwitchQuestion | null;
  outcome:
    | { type: "linked"; linked: Linked }
    | { type: "kept"; account: AccountView; notLinked: AccountView | null }
    | { type: "failed"; error: PairingErrorView }
    | { type: "cancelled" }
    | null;
}

export function newPairing(id: number, speakerName: string): PairingModel {
  const stages = {} as Record<Stage | "linked", StageRow>;
  for (const s of STAGES) stages[s.id] = { status: "pending", detail: null, millis: null };
  return { id, speakerName, stages, signIn: null, retrying: null, wifi: null, switchQuestion: null, outcome: null };
}

/**
 * Applies one event. Events of older attempts are ignored; an event of a newer attempt (its
 * start answer not seen yet) starts a fresh model, so nothing is lost to the race between an
 * invoke's answer and the first events.
 */
export function applyEvent(model: PairingModel | null, ev: PairingEvent): PairingModel | null {
  if (model && ev.pairingId < model.id) return model;
  const m: PairingModel = model && ev.pairingId === model.id ? clone(model) : newPairing(ev.pairingId, model?.speakerName ?? "");
  if (m.outcome) return m; // final already
  switch (ev.type) {
    case "stage": {
      const row = m.stages[ev.stage];
      if (ev.state === "active") {
        if (row.status !== "done") row.status = "active";
      } else {
        row.status = "done";
        row.millis = ev.millis;
      }
      if (ev.detail) row.detail = ev.detail;
      // Everything before a started stage is done.
      const idx = STAGES.findIndex((s) => s.id === ev.stage);
      for (const s of STAGES.slice(0, idx)) m.stages[s.id].status = "done";
      if (ev.stage !== "exchange") m.retrying = null;
      break;
    }
    case "signIn":
      m.signIn = { url: ev.url, automatic: ev.automatic, opened: false };
      break;
    case "pasteRejected":
      if (m.signIn) m.signIn.pasteError = ev.message;
      break;
    case "browserOpened":
      if (m.signIn) m.signIn.opened = true;
      break;
    case "wifiChoose":
      m.wifi = {
        networks: ev.networks,
        lastError: ev.lastError,
        lastNetwork: ev.lastNetwork,
        asked: (m.wifi?.asked ?? 0) + 1,
        progress: null,
        joined: null,
      };
      break;
    case "wifiProgress":
      if (m.wifi) m.wifi.progress = ev.detail;
      break;
    case "wifiJoined":
      if (m.wifi) {
        m.wifi.joined = ev.detail;
        m.wifi.progress = null;
      }
      break;
    case "retrying":
      m.retrying = `Trying again (${ev.attempt}): ${ev.reason}`;
      break;
    case "linked":
      for (const s of STAGES) m.stages[s.id].status = "done";
      m.speakerName = ev.speakerName || m.speakerName;
      m.outcome = {
        type: "linked",
        linked: {
          speakerId: ev.speakerId,
          speakerName: ev.speakerName,
          userId: ev.userId,
          account: ev.account ?? null,
          totalMillis: ev.totalMillis,
        },
      };
      break;
    case "confirmAccountSwitch":
      m.switchQuestion = { current: ev.current, next: ev.new, answered: false };
      break;
    case "keptAccount":
      m.outcome = { type: "kept", account: ev.account, notLinked: ev.notLinked };
      break;
    case "failed": {
      const active = STAGES.find((s) => m.stages[s.id].status === "active");
      if (active) m.stages[active.id].status = "failed";
      m.outcome = { type: "failed", error: ev.error };
      break;
    }
    case "cancelled":
      m.outcome = { type: "cancelled" };
      break;
  }
  return m;
}

/** True while the Wi-Fi step runs (choosing or joining). */
export function waitingForWifi(m: PairingModel | null): boolean {
  return !!m && !m.outcome && m.wifi !== null && m.wifi.joined === null;
}

/** True while the speaker waits for the user's Replace / Keep. */
export function waitingForSwitch(m: PairingModel | null): boolean {
  return !!m && !m.outcome && m.switchQuestion !== null && !m.switchQuestion.answered;
}

/** True while the user has to act in the browser. */
export function waitingForSignIn(m: PairingModel | null): boolean {
  return !!m && !m.outcome && m.signIn !== null && m.stages.signIn.status === "active";
}

function clone(m: PairingModel): PairingModel {
  return {
    ...m,
    stages: Object.fromEntries(Object.entries(m.stages).map(([k, v]) => [k, { ...v }])) as PairingModel["stages"],
    signIn: m.signIn ? { ...m.signIn } : null,
    wifi: m.wifi ? { ...m.wifi } : null,
    switchQuestion: m.switchQuestion ? { ...m.switchQuestion } : null,
  };
}
