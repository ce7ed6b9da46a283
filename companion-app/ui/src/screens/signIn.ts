// Sign in with Amazon: one button that opens Amazon's page in the system browser (never inside
// this window), then "waiting for you to finish in the browser" with Cancel. When the redirect
// can't come back by itself, a field takes the address the browser landed on.

import type { App, Screen } from "../app";
import { h, svg, replaceChildren } from "../dom";
import { heading, lead } from "./parts";
import { icons } from "../icons";

export function signInScreen(app: App): Screen {
  const p = app.state.pairing;
  const name = p?.speakerName || "your speaker";
  const error = h("p", { class: "field-error", id: "sign-in-error", role: "alert" });
  const openBtn = h(
    "button",
    { class: "btn btn-amazon btn-lg", type: "button", id: "open-sign-in" },
    h("span", null, "Continue to Amazon"),
    svg(icons.external, "icon icon-sm"),
  );
  const waiting = h("div", { class: "waiting", id: "waiting", hidden: true, role: "status" });
  const cancelBtn = h("button", { class: "btn btn-ghost", type: "button", id: "cancel" }, "Cancel");
  cancelBtn.addEventListener("click", () => void app.cancel());

  const pasteInput = h("input", {
    id: "paste-url",
    class: "input",
    type: "url",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "https://…?code=…&state=…",
  });
  const pasteForm = h(
    "form",
    { class: "paste-form", id: "paste-form", hidden: true, novalidate: true },
    h("label", { class: "label", for: "paste-url" }, "Address of the page you landed on"),
    h("div", { class: "input-row" }, pasteInput, h("button", { class: "btn btn-secondary", type: "submit" }, "Continue")),
    h("p", { class: "help" }, "After you allow access, copy the whole address from the browser's address bar and paste it here."),
  );
  pasteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await app.commands.pasteRedirect(pasteInput.value);
    } catch (err) {
      error.textContent = (err as { message: string }).message;
    }
  });

  async function open(): Promise<void> {
    error.textContent = "";
    openBtn.disabled = true;
    try {
      await app.commands.openSignIn();
    } catch (err) {
      error.textContent = (err as { message: string }).message;
    } finally {
      openBtn.disabled = false;
    }
  }
  openBtn.addEventListener("click", () => void open());

  async function copyLink(btn: HTMLButtonElement): Promise<void> {
    const url = app.state.pairing?.signIn?.url;
    if (!url) return;
    try {
      await navigator.clipboard.writeText(url);
      btn.textContent = "Link copied";
    } catch {
      error.textContent = "Couldn't copy the link. Open the page with the button instead.";
    }
  }

  function render(): void {
    const s = app.state.pairing?.signIn;
    const opened = !!s?.opened;
    openBtn.hidden = opened;
    waiting.hidden = !opened;
    pasteForm.hidden = !s || s.automatic;
    // A pasted address that was not the return address: why, and the field is ready again.
    if (s?.pasteError && error.dataset.paste !== s.pasteError) {
      error.dataset.paste = s.pasteError;
      error.textContent = s.pasteError;
      pasteInput.select();
      pasteInput.focus();
    }
    if (opened && !waiting.hasChildNodes()) {
      const copyBtn = h("button", { class: "btn btn-link", type: "button", id: "copy-link" }, svg(icons.copy, "icon icon-sm"), "Copy link");
      copyBtn.addEventListener("click", () => void copyLink(copyBtn));
      replaceChildren(
        waiting,
        h("span", { class: "spinner", "aria-hidden": "true" }),
        h(
          "div",
          null,
          h("p", { class: "waiting-title" }, "Waiting for you to finish in the browser…"),
          h(
            "p",
            { class: "muted" },
            "Sign in and choose Allow. This window continues by itself.",
          ),
          h(
            "div",
            { class: "inline-actions" },
            h("button", { class: "btn btn-link", type: "button", id: "reopen", onclick: () => void open() }, svg(icons.external, "icon icon-sm"), "Open the page again"),
            copyBtn,
          ),
        ),
      );
      app.announce("Waiting for you to finish signing in in the browser.");
    }
    if (opened && (document.activeElement === openBtn || document.activeElement === document.body)) {
      waiting.querySelector<HTMLElement>("#reopen")?.focus();
    }
  }

  const el = h(
    "div",
    { class: "screen", id: "sign-in" },
    heading("Sign in with Amazon"),
    lead(
      "Your browser opens Amazon's sign-in page. Sign in there and allow ",
      h("strong", null, name),
      " to use Alexa.",
    ),
    h(
      "ul",
      { class: "assurances" },
      h("li", null, svg(icons.lock, "icon icon-sm"), "This app never sees your password."),
      h("li", null, svg(icons.speaker, "icon icon-sm"), "The speaker keeps its own sign-in; nothing is stored here."),
    ),
    h("div", { class: "sign-in-action" }, openBtn, waiting),
    pasteForm,
    error,
    h("div", { class: "actions" }, cancelBtn, h("span")),
  );
  render();
  return {
    id: "signIn",
    el,
    update: render,
    focus: () => (openBtn.hidden ? el.querySelector("h1") : openBtn),
  };
}
