// Setup code: 8 digits, the manual code with its check digit, or a pasted QR payload. Checked as
// it is typed by the Rust side's parser (the same one the handshake uses); the code itself is
// never kept in the page after Continue.

import type { App, Screen } from "../app";
import { h, svg, replaceChildren } from "../dom";
import { heading, lead, screenForm } from "./parts";
import { icons } from "../icons";
import { formatCodeInput } from "../format";
import type { SetupCodeCheck } from "../ipc";

export function setupCodeScreen(app: App): Screen {
  const speaker = app.selected();
  const name = speaker?.name || "your speaker";

  const input = h("input", {
    id: "setup-code",
    class: "input input-code",
    type: "text",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    spellcheck: "false",
    maxlength: "256",
    placeholder: "1234 5678",
    "aria-describedby": "code-help code-status",
  });
  const statusLine = h("p", { class: "code-status", id: "code-status", "aria-live": "polite" });
  const startError = h("div", { class: "callout callout-error", id: "start-error", role: "alert", hidden: true });
  const continueBtn = h("button", { class: "btn btn-primary", type: "submit", id: "continue", disabled: true }, "Continue");
  const backBtn = h("button", { class: "btn btn-ghost", type: "button", id: "back" }, "Back");
  backBtn.addEventListener("click", () => app.show("speakers"));

  let check: SetupCodeCheck = { status: "incomplete", format: null, message: "", deviceId: null };
  let seq = 0;
  let busy = false;

  async function onInput(): Promise<void> {
    const before = input.value;
    const formatted = formatCodeInput(before);
    if (formatted !== before) {
      const atEnd = input.selectionStart === before.length;
      input.value = formatted;
      if (atEnd) input.setSelectionRange(formatted.length, formatted.length);
    }
    const mine = ++seq;
    try {
      const answer = await app.commands.checkSetupCode(input.value);
      if (mine !== seq) return; // a newer keystroke answered already
      check = answer;
    } catch (e) {
      check = { status: "invalid", format: null, message: (e as { message: string }).message, deviceId: null };
    }
    app.state.startError = null;
    render();
  }
  input.addEventListener("input", () => void onInput());

  function render(): void {
    const err = app.state.startError;
    startError.hidden = !err;
    if (err) {
      replaceChildren(
        startError,
        h("p", null, err.message),
        err.field
          ? h("button", { class: "btn btn-secondary btn-sm", type: "button", id: "error-settings", onclick: () => app.openSettings() }, "Open settings")
          : null,
      );
    }
    const qrMismatch = check.status === "valid" && check.format === "qr" && check.deviceId && speaker && check.deviceId !== speaker.id;
    const tone = check.status === "invalid" || qrMismatch ? "bad" : check.status === "valid" ? "good" : "neutral";
    statusLine.className = `code-status ${tone}`;
    input.setAttribute("aria-invalid", String(tone === "bad"));
    const text = qrMismatch ? "This QR code belongs to a different speaker." : check.message;
    replaceChildren(
      statusLine,
      tone === "good" ? svg(icons.checkCircle, "icon icon-sm") : tone === "bad" ? svg(icons.alert, "icon icon-sm") : null,
      h("span", null, text || "\u00a0"),
    );
    continueBtn.disabled = busy || check.status !== "valid" || !!qrMismatch;
    continueBtn.textContent = busy ? "Connecting…" : "Continue";
  }

  const form = screenForm(
    "code-form",
    heading("Enter the setup code"),
    lead("For ", h("strong", { id: "code-speaker" }, name), ". It proves this is your speaker and keeps the setup private."),
    h("label", { for: "setup-code", class: "label" }, "Setup code"),
    input,
    statusLine,
    h(
      "p",
      { class: "help", id: "code-help" },
      "The 8-digit code is on the label under the speaker, or was shown when it first started. ",
      "The longer code with a check digit (1234-5670-9) and the text of its QR code work too.",
    ),
    startError,
    h("div", { class: "actions" }, backBtn, continueBtn),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (continueBtn.disabled) return;
    busy = true;
    render();
    const code = input.value;
    const ok = await app.startPairing(code);
    busy = false;
    if (ok) {
      input.value = "";
    } else {
      render();
      input.focus();
    }
  });

  render();
  return {
    id: "setupCode",
    el: form,
    update: render,
    focus: () => input,
    onEscape: () => app.show("speakers"),
  };
}
