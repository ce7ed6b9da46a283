// Wi-Fi: shown between the setup code and the sign-in when the speaker is not online (it needs a
// network that reaches Amazon before anyone signs in). The speaker's scan as a list (signal bars,
// a lock on secured networks, the network it already knows marked), a password field with a
// show toggle, "Other network…" for a hidden name, the join's progress, and a failure that keeps
// the user here with the reason in words and the field focused, the same network still selected.
//
// The answer goes to Rust with chooseWifi (scanned networks by index: an SSID is bytes, not
// always text). Cancel stops the pairing like everywhere else.

import type { App, Screen } from "../app";
import { h, svg, replaceChildren } from "../dom";
import { heading, lead, screenForm } from "./parts";
import { icons } from "../icons";
import type { WifiNetworkView } from "../ipc";

const OTHER = "other";

/** Signal bars, 1 to 4 filled (the same thresholds as the CLI's list). */
function bars(signal: number): SVGElement {
  const level = signal < 25 ? 1 : signal < 50 ? 2 : signal < 75 ? 3 : 4;
  const rects = [0, 1, 2, 3]
    .map((i) => {
      const height = 5 + i * 4.5;
      return `<rect x="${3 + i * 5}" y="${21 - height}" width="3.4" height="${height}" rx="1" class="${i < level ? "on" : "off"}"/>`;
    })
    .join("");
  return svg(`<svg viewBox="0 0 24 24" stroke="none">${rects}</svg>`, "icon signal");
}

export function wifiScreen(app: App): Screen {
  const name = app.state.pairing?.speakerName || "your speaker";
  let selected: string | null = null;
  let seenAsked = 0;
  let sending = false;

  const error = h("div", { class: "callout callout-error", id: "wifi-error", role: "alert", hidden: true });
  const list = h("div", { class: "speaker-list wifi-list", id: "wifi-list", role: "radiogroup", "aria-label": "Wi-Fi networks" });
  const ssidInput = h("input", {
    id: "wifi-ssid",
    class: "input",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: 32,
    placeholder: "Network name",
  });
  const ssidField = h("div", { class: "field", id: "wifi-ssid-field", hidden: true }, h("label", { class: "label", for: "wifi-ssid" }, "Network name"), ssidInput);
  const passInput = h("input", {
    id: "wifi-password",
    class: "input",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: 128,
    "aria-describedby": "wifi-password-help",
  });
  const showBtn = h(
    "button",
    { class: "btn btn-secondary", type: "button", id: "wifi-show", "aria-pressed": "false", "aria-controls": "wifi-password" },
    "Show",
  );
  showBtn.addEventListener("click", () => {
    const show = passInput.type === "password";
    passInput.type = show ? "text" : "password";
    showBtn.textContent = show ? "Hide" : "Show";
    showBtn.setAttribute("aria-pressed", String(show));
    passInput.focus();
  });
  const passLabel = h("label", { class: "label", for: "wifi-password" }, "Password");
  const passHelp = h("p", { class: "help", id: "wifi-password-help" });
  const passField = h("div", { class: "field", id: "wifi-password-field" }, passLabel, h("div", { class: "input-row" }, passInput, showBtn), passHelp);
  const progress = h("div", { class: "waiting wifi-progress", id: "wifi-progress", role: "status", hidden: true });
  const connectBtn = h("button", { class: "btn btn-primary", type: "submit", id: "wifi-connect" }, "Connect");
  const cancelBtn = h("button", { class: "btn btn-ghost", type: "button", id: "cancel" }, "Cancel");
  cancelBtn.addEventListener("click", () => void app.cancel());

  const wifi = () => app.state.pairing?.wifi ?? null;
  const networkOf = (v: string | null): WifiNetworkView | null =>
    v === null || v === OTHER ? null : wifi()?.networks.find((n) => String(n.index) === v) ?? null;

  function showError(text: string | null): void {
    error.hidden = !text;
    replaceChildren(error, text ? h("p", null, text) : null);
    passInput.setAttribute("aria-invalid", String(!!text && !passField.hidden));
  }

  /** The field the user should type in now. */
  function field(): HTMLInputElement | null {
    if (selected === OTHER && !ssidInput.value.trim()) return ssidInput;
    if (!passField.hidden) return passInput;
    if (selected === OTHER) return ssidInput;
    return null;
  }

  function renderFields(): void {
    const net = networkOf(selected);
    ssidField.hidden = selected !== OTHER;
    const needsPass = selected === OTHER || (!!net && net.secured);
    passField.hidden = !needsPass;
    if (net?.known) {
      passHelp.textContent = `The speaker has ${net.ssid} saved: leave this empty to use the saved password.`;
    } else if (selected === OTHER) {
      passHelp.textContent = "Leave it empty if the network has no password.";
    } else {
      passHelp.textContent = net ? `The password of ${net.ssid}.` : "";
    }
    passLabel.textContent = net ? `Password for ${net.ssid}` : "Password";
    for (const row of list.querySelectorAll<HTMLElement>(".speaker-row")) {
      const on = row.dataset.value === selected;
      row.classList.toggle("selected", on);
      const radio = row.querySelector<HTMLInputElement>("input[type=radio]");
      if (radio) radio.checked = on;
    }
  }

  function select(value: string): void {
    if (value !== selected) passInput.value = "";
    selected = value;
    renderFields();
  }

  function row(value: string, n: WifiNetworkView | null): HTMLElement {
    const disabled = !!n && !n.supported;
    const radio = h("input", {
      type: "radio",
      name: "wifi-network",
      value,
      class: "sr-only-radio",
      id: `wifi-${value}`,
      disabled,
      "aria-describedby": `wifi-${value}-meta`,
    });
    radio.addEventListener("change", () => {
      select(value);
    });
    const meta = n
      ? [n.secured ? "Secured" : "Open", `signal ${n.signal}%`, n.known ? "saved on the speaker" : null, disabled ? "the speaker can't join this kind of network" : null]
          .filter(Boolean)
          .join(", ")
      : "A network that doesn't show its name";
    return h(
      "label",
      {
        class: `speaker-row wifi-row${disabled ? " disabled" : ""}`,
        for: `wifi-${value}`,
        "data-value": value,
        "data-ssid": n?.ssid ?? null,
      },
      radio,
      h("span", { class: "speaker-icon wifi-signal", "aria-hidden": "true" }, n ? bars(n.signal) : svg(icons.plus, "icon")),
      h(
        "span",
        { class: "speaker-text" },
        h("span", { class: "speaker-name" }, n ? n.ssid : "Other network…"),
        h("span", { class: "speaker-meta sr-only", id: `wifi-${value}-meta` }, meta),
      ),
      h(
        "span",
        { class: "wifi-badges" },
        n?.known ? h("span", { class: "chip chip-ok", title: "Saved on the speaker" }, "Known") : null,
        disabled ? h("span", { class: "chip chip-warn" }, "Can't join") : null,
        n?.secured ? h("span", { class: "wifi-lock", title: "Needs a password" }, svg(icons.lock, "icon icon-sm")) : null,
      ),
    );
  }

  function renderList(): void {
    const w = wifi();
    const nets = w?.networks ?? [];
    replaceChildren(list, nets.map((n) => row(String(n.index), n)), row(OTHER, null));
  }

  /** A new question from the speaker: the list, the last failure, the network it tried. */
  function arm(): void {
    const w = wifi();
    if (!w) return;
    seenAsked = w.asked;
    sending = false;
    renderList();
    if (w.lastNetwork !== null && w.networks.some((n) => n.index === w.lastNetwork)) {
      selected = String(w.lastNetwork);
    } else if (selected === null || (selected !== OTHER && !networkOf(selected))) {
      // Preselect the network the speaker knows, else the strongest it can join.
      const pick = w.networks.find((n) => n.known && n.supported) ?? w.networks.find((n) => n.supported);
      selected = pick ? String(pick.index) : OTHER;
    }
    renderFields();
    showError(w.lastError);
    if (w.lastError) app.announce(w.lastError);
  }

  function render(): void {
    const w = wifi();
    const fresh = !!w && w.asked !== seenAsked;
    if (fresh) arm();
    const busy = sending || (!!w && w.progress !== null);
    for (const el of form.querySelectorAll<HTMLInputElement | HTMLButtonElement>("input, button")) {
      if (el !== cancelBtn) el.disabled = busy || (el instanceof HTMLInputElement && el.type === "radio" && el.closest(".disabled") !== null);
    }
    progress.hidden = !busy;
    // After a failure: back in the field (enabled again above), its text selected to retype.
    if (fresh && w?.lastError) {
      const f = field();
      f?.focus();
      f?.select();
    }
    if (busy) {
      const net = networkOf(selected);
      const target = net?.ssid ?? (ssidInput.value.trim() || "the network");
      replaceChildren(
        progress,
        h("span", { class: "spinner", "aria-hidden": "true" }),
        h(
          "div",
          null,
          h("p", { class: "waiting-title" }, `Connecting ${name} to ${target}…`),
          h("p", { class: "muted", id: "wifi-progress-detail" }, w?.progress ?? "Sending the password to the speaker"),
        ),
      );
    }
  }

  const form = screenForm(
    "wifi",
    heading("Choose a Wi-Fi network"),
    lead(h("strong", null, name), " isn't online yet. Choose the network it should use: it needs one that reaches Amazon before you sign in."),
    error,
    list,
    ssidField,
    passField,
    progress,
    h(
      "ul",
      { class: "assurances" },
      h("li", null, svg(icons.lock, "icon icon-sm"), "The password goes to the speaker over the encrypted link; this app doesn't keep it."),
    ),
    h("div", { class: "actions" }, cancelBtn, connectBtn),
  );

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (sending) return;
    const net = networkOf(selected);
    const hidden = selected === OTHER;
    if (!net && !hidden) {
      showError("Choose a network.");
      return;
    }
    if (hidden && !ssidInput.value.trim()) {
      showError("Enter the network's name.");
      ssidInput.focus();
      return;
    }
    if (net && net.secured && !net.known && passInput.value === "") {
      showError(`Enter the password for ${net.ssid}.`);
      passInput.focus();
      return;
    }
    showError(null);
    sending = true;
    render();
    try {
      await app.commands.chooseWifi({
        network: net ? net.index : null,
        hiddenSsid: hidden ? ssidInput.value.trim() : null,
        password: passField.hidden || passInput.value === "" ? null : passInput.value,
      });
      app.announce(`Connecting to ${net?.ssid ?? ssidInput.value.trim()}.`);
    } catch (err) {
      sending = false;
      render();
      showError((err as { message: string }).message);
      field()?.focus();
    }
  });

  render();
  return {
    id: "wifi",
    el: form,
    update: render,
    focus: () => field() ?? list.querySelector<HTMLInputElement>("input[type=radio]:checked") ?? form.querySelector("h1"),
    onEscape: () => void app.cancel(),
  };
}
