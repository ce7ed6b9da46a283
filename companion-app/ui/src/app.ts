// The app shell: state, navigation between screens, and the wiring to the Rust side.
//
// Each screen is built when it is shown (src/screens/*) and gets live updates through its
// `update` method, so typing, focus and scroll position survive list and progress updates.

import { h, svg, replaceChildren } from "./dom";
import { icons } from "./icons";
import {
  commands as realCommands,
  onPairing,
  onSpeakers,
  type CommandError,
  type Commands,
  type PairingEvent,
  type SettingsView,
  type SpeakersView,
  type SpeakerView,
} from "./ipc";
import { STAGES, applyEvent, newPairing, waitingForSignIn, waitingForSwitch, waitingForWifi, type PairingModel } from "./model";
import { accountSwitchScreen } from "./screens/accountSwitch";
import { speakersScreen } from "./screens/speakers";
import { setupCodeScreen } from "./screens/setupCode";
import { signInScreen } from "./screens/signIn";
import { wifiScreen } from "./screens/wifi";
import { progressScreen } from "./screens/progress";
import { resultScreen } from "./screens/result";
import { settingsScreen } from "./screens/settings";
import { keepFocusedFieldsInSight } from "./keyboard";

export type ScreenId = "speakers" | "setupCode" | "wifi" | "signIn" | "progress" | "accountSwitch" | "result" | "settings";

export interface Screen {
  id: ScreenId;
  /** The screen's root; shown inside the card. */
  el: HTMLElement;
  /** Where focus goes when the screen is shown. */
  focus?: () => HTMLElement | null;
  /** Called when the app state changes while the screen is shown. */
  update?: () => void;
  /** Escape key. */
  onEscape?: () => void;
  /** Called when the screen is left. */
  dispose?: () => void;
}

export interface AppState {
  settings: SettingsView | null;
  speakers: SpeakersView;
  selectedId: string | null;
  pairing: PairingModel | null;
  /** An error shown on the setup code screen (start failed before any pairing ran). */
  startError: CommandError | null;
}

const FLOW: Partial<Record<ScreenId, number>> = { speakers: 0, setupCode: 1, signIn: 2, progress: 3, accountSwitch: 3, result: 3 };
const FLOW_LABELS = ["Speaker", "Setup code", "Sign in", "Link"];

/** How each screen is built when it is shown: a new screen is one id above and one entry here. */
const SCREENS: Record<ScreenId, (app: App) => Screen> = {
  speakers: speakersScreen,
  setupCode: setupCodeScreen,
  wifi: wifiScreen,
  signIn: signInScreen,
  progress: progressScreen,
  accountSwitch: accountSwitchScreen,
  result: resultScreen,
  settings: settingsScreen,
};

export class App {
  readonly state: AppState = {
    settings: null,
    speakers: { discovery: "searching", message: null, speakers: [] },
    selectedId: null,
    pairing: null,
    startError: null,
  };
  private screen: Screen | null = null;
  private returnTo: ScreenId = "speakers";
  /** The newest attempt the user left (cancelled, or done with its result): later events of it
   * or older attempts are late and change nothing (ids only grow). */
  private leftUpTo = 0;
  private readonly card: HTMLElement;
  private readonly steps: HTMLElement;
  private readonly live: HTMLElement;

  constructor(
    private readonly root: HTMLElement,
    readonly commands: Commands = realCommands,
  ) {
    this.steps = h("ol", { class: "steps", "aria-label": "Setup steps" });
    this.card = h("section", { class: "card", id: "screen" });
    this.live = h("div", { class: "sr-only", role: "status", "aria-live": "polite", id: "announcer" });
    const settingsBtn = h(
      "button",
      {
        class: "btn btn-icon",
        type: "button",
        id: "open-settings",
        "aria-label": "Settings",
        title: "Settings",
        onclick: () => this.openSettings(),
      },
      svg(icons.settings),
      h("span", { class: "btn-icon-label" }, "Settings"),
    );
    replaceChildren(
      this.root,
      h(
        "header",
        { class: "appbar" },
        h("div", { class: "brand" }, svg(icons.speaker, "brand-mark"), h("span", null, "Speaker Setup")),
        settingsBtn,
      ),
      h("main", { class: "main", id: "main" }, this.steps, this.card),
      // Room to scroll a field above an on-screen keyboard (keyboard.ts); empty until needed.
      h("div", { id: "keyboard-room", "aria-hidden": "true" }),
      this.live,
    );
    keepFocusedFieldsInSight(this.root);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.screen?.onEscape && !e.defaultPrevented) {
        e.preventDefault();
        this.screen.onEscape();
      }
    });
  }

  async start(): Promise<void> {
    await onSpeakers((view) => this.setSpeakers(view));
    await onPairing((ev) => this.pairingEvent(ev));
    this.show("speakers");
    const [settings, speakers] = await Promise.allSettled([
      this.commands.getSettings(),
      this.commands.startDiscovery(),
    ]);
    if (settings.status === "fulfilled") this.state.settings = settings.value;
    if (speakers.status === "fulfilled") this.setSpeakers(speakers.value);
    else this.setSpeakers({ discovery: "failed", message: (speakers.reason as CommandError).message, speakers: [] });
    this.refresh();
  }

  // ----- navigation -----

  show(id: ScreenId): void {
    this.screen?.dispose?.();
    const screen = SCREENS[id](this);
    this.screen = screen;
    this.card.dataset.screen = id;
    document.body.dataset.screen = id;
    replaceChildren(this.card, screen.el);
    this.renderSteps(id);
    document.getElementById("keyboard-room")?.style.removeProperty("height");
    const target = screen.focus?.() ?? screen.el.querySelector<HTMLElement>("h1");
    target?.focus({ preventScroll: false });
    window.scrollTo({ top: 0 });
  }

  get current(): ScreenId | null {
    return this.screen?.id ?? null;
  }

  private renderSteps(id: ScreenId): void {
    // A speaker that had to be put on Wi-Fi gets a "Wi-Fi" step between the code and the sign-in.
    const withWifi = id === "wifi" || !!this.state.pairing?.wifi;
    const labels = withWifi ? [...FLOW_LABELS.slice(0, 2), "Wi-Fi", ...FLOW_LABELS.slice(2)] : FLOW_LABELS;
    let at = id === "wifi" ? 2 : FLOW[id];
    if (withWifi && id !== "wifi" && at !== undefined && at >= 2) at += 1;
    // A failed pairing's result marks the step it failed at: the steps before it are done, the
    // ones after it are not (a wrong setup code is no "Setup code ✓").
    const failedAt = id === "result" ? this.failedStep(withWifi) : null;
    if (failedAt !== null) at = failedAt;
    this.steps.hidden = at === undefined;
    if (at === undefined) return;
    replaceChildren(
      this.steps,
      labels.map((label, i) =>
        h(
          "li",
          {
            class: i < at ? "done" : i === at ? (failedAt !== null ? "current failed" : "current") : "",
            "aria-current": i === at ? "step" : null,
          },
          h(
            "span",
            { class: "step-dot", "aria-hidden": "true" },
            i < at ? svg(icons.check, "icon icon-xs") : i === failedAt ? svg(icons.cross, "icon icon-xs") : String(i + 1),
          ),
          h("span", { class: "step-label" }, label),
          i === failedAt ? h("span", { class: "sr-only" }, " (failed)") : null,
        ),
      ),
    );
  }

  /** The step (index into the steps bar) a failed pairing stopped at; null when it did not fail. */
  private failedStep(withWifi: boolean): number | null {
    const p = this.state.pairing;
    if (p?.outcome?.type !== "failed") return null;
    const stage = STAGES.find((s) => p.stages[s.id].status === "failed")?.id;
    let step: number | null = null;
    if (stage === "connect") step = 0;
    else if (stage === "secure" || p.outcome.error.kind === "wrongSetupCode") step = 1;
    else if (stage === "signIn") step = 2;
    else if (stage) step = 3;
    if (step !== null && withWifi && step >= 2) step += 1;
    return step;
  }

  /** Re-renders the shown screen's live parts. */
  refresh(): void {
    this.screen?.update?.();
  }

  announce(text: string): void {
    this.live.textContent = text;
  }

  openSettings(): void {
    if (this.current === "settings") return;
    const cur = this.current ?? "speakers";
    // Coming back to a running pairing's screen is fine; the pairing keeps running meanwhile.
    this.returnTo = cur;
    this.show("settings");
  }

  closeSettings(): void {
    const p = this.state.pairing;
    // A pairing may have moved on meanwhile (signed in, linked, failed): show where it is now.
    if (p && (p.outcome?.type !== "cancelled") && ["wifi", "signIn", "progress", "result"].includes(this.returnTo)) {
      this.route();
      return;
    }
    this.show(this.returnTo === "settings" ? "speakers" : this.returnTo);
  }

  // ----- speakers -----

  setSpeakers(view: SpeakersView): void {
    this.state.speakers = view;
    if (this.state.selectedId && !view.speakers.some((s) => s.id === this.state.selectedId)) {
      // Keep the choice while pairing (the row may flicker during a speaker restart).
      if (!this.state.pairing || this.state.pairing.outcome) this.state.selectedId = null;
    }
    this.refresh();
  }

  selected(): SpeakerView | null {
    return this.state.speakers.speakers.find((s) => s.id === this.state.selectedId) ?? null;
  }

  choose(id: string): void {
    this.state.selectedId = id;
    this.state.startError = null;
    this.show("setupCode");
  }

  // ----- pairing -----

  async startPairing(code: string): Promise<boolean> {
    const speaker = this.selected();
    if (!speaker) return false;
    this.state.startError = null;
    try {
      const started = await this.commands.startPairing(speaker.id, code);
      this.beginPairing(started.pairingId, started.speakerName);
      return true;
    } catch (e) {
      this.state.startError = e as CommandError;
      this.refresh();
      return false;
    }
  }

  async retry(): Promise<void> {
    try {
      const started = await this.commands.retryPairing();
      this.beginPairing(started.pairingId, started.speakerName);
    } catch (e) {
      this.state.startError = e as CommandError;
      this.show("setupCode");
    }
  }

  private beginPairing(id: number, speakerName: string): void {
    const existing = this.state.pairing;
    // Events may have arrived before the answer: keep them.
    if (existing && existing.id === id) existing.speakerName = speakerName;
    else if (!existing || existing.id < id) this.state.pairing = newPairing(id, speakerName);
    this.route();
  }

  async cancel(): Promise<void> {
    await this.commands.cancelPairing().catch(() => false);
    this.leaveCurrentPairing();
    this.show(this.state.selectedId ? "setupCode" : "speakers");
    this.announce("Pairing cancelled.");
  }

  pairingEvent(ev: PairingEvent): void {
    if (ev.pairingId <= this.leftUpTo) return;
    const before = this.state.pairing;
    const after = applyEvent(before, ev);
    if (!after || after === before) return;
    this.state.pairing = after;
    if (ev.type === "linked") this.announce(`${ev.speakerName} is linked.`);
    if (ev.type === "failed") this.announce(ev.error.title);
    if (this.current === "settings") return;
    if (ev.type === "cancelled") {
      // Cancelled from here already navigated; cancelled elsewhere (window closing) needs nothing.
      return;
    }
    this.route();
  }

  /** Shows the screen the pairing is at. */
  private route(): void {
    const p = this.state.pairing;
    if (!p) return;
    let want: ScreenId = "progress";
    if (p.outcome && p.outcome.type !== "cancelled") want = "result";
    else if (waitingForSwitch(p)) want = "accountSwitch";
    else if (waitingForWifi(p)) want = "wifi";
    else if (waitingForSignIn(p)) want = "signIn";
    if (this.current === want) this.refresh();
    else this.show(want);
  }

  private leaveCurrentPairing(): void {
    if (this.state.pairing) this.leftUpTo = Math.max(this.leftUpTo, this.state.pairing.id);
    this.state.pairing = null;
  }

  /** Answers the speaker's "Replace the account?" question, then follows the pairing on. */
  async answerAccountSwitch(replace: boolean): Promise<void> {
    await this.commands.answerAccountSwitch(replace);
    const q = this.state.pairing?.switchQuestion;
    if (q) q.answered = true;
    this.announce(replace ? "Replacing the account." : "Keeping the linked account.");
    this.route();
  }

  doneWithResult(): void {
    this.leaveCurrentPairing();
    this.state.selectedId = null;
    this.show("speakers");
  }
}
