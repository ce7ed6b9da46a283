// Result: linked (with the Amazon account if the speaker read it), or the exact reason and the
// next step that makes sense for it (retry with what is still valid, a new code, settings).

import type { App, Screen } from "../app";
import { h, svg } from "../dom";
import { heading, lead } from "./parts";
import { icons } from "../icons";
import { duration } from "../format";
import type { RetryMode } from "../ipc";
import { disclosure } from "../disclosure";
import { accountCard, keptResult } from "./accountSwitch";

const PRIMARY: Record<RetryMode, string> = {
  sameCode: "Try again",
  newCode: "Enter the code again",
  settings: "Open settings",
  chooseSpeaker: "Back to speakers",
};

export function resultScreen(app: App): Screen {
  const p = app.state.pairing;
  const outcome = p?.outcome;
  if (outcome?.type === "kept") return keptResult(app, outcome.account, outcome.notLinked);
  if (outcome?.type === "linked") {
    const l = outcome.linked;
    const done = h("button", { class: "btn btn-primary", type: "button", id: "done" }, "Done");
    done.addEventListener("click", () => app.doneWithResult());
    const el = h(
      "div",
      { class: "screen result result-ok", id: "result" },
      h("div", { class: "result-icon ok" }, svg(icons.checkCircle, "icon icon-xl")),
      heading(`${l.speakerName || "Your speaker"} is linked`),
      lead("It is signed in to Amazon and keeps itself signed in from now on. You can close this app."),
      h(
        "div",
        { class: "callout callout-info first-words", id: "first-words" },
        h("p", null, h("strong", null, "Try it: "), "say ", h("span", { class: "say" }, "“Alexa, what time is it?”")),
      ),
      l.account
        ? accountCard("account", "Amazon account", l.account)
        : l.userId
        ? h(
            "div",
            { class: "account", id: "account" },
            svg(icons.account, "icon"),
            h("div", null, h("span", { class: "muted" }, "Amazon account"), h("span", { class: "mono account-id" }, l.userId)),
          )
        : null,
      // For developers: how long it took.
      disclosure("result-advanced", "Advanced", [h("p", { class: "muted small", id: "setup-time" }, `Set up in ${duration(l.totalMillis)}.`)]).el,
      h("div", { class: "actions" }, h("span"), done),
    );
    return { id: "result", el, focus: () => done };
  }

  const error = outcome?.type === "failed" ? outcome.error : null;
  const retry: RetryMode = error?.retry ?? "chooseSpeaker";
  const primary = h("button", { class: "btn btn-primary", type: "button", id: "retry" }, PRIMARY[retry]);
  primary.addEventListener("click", () => {
    switch (retry) {
      case "sameCode":
        void app.retry();
        break;
      case "newCode":
        app.state.pairing = null;
        app.show("setupCode");
        break;
      case "settings":
        app.openSettings();
        break;
      case "chooseSpeaker":
        app.doneWithResult();
        break;
    }
  });
  const other =
    retry === "chooseSpeaker"
      ? h("span")
      : h("button", { class: "btn btn-ghost", type: "button", id: "choose-other", onclick: () => app.doneWithResult() }, "Choose another speaker");
  const el = h(
    "div",
    { class: "screen result result-error", id: "result", "data-kind": error?.kind ?? "failure" },
    h("div", { class: "result-icon bad" }, svg(icons.alert, "icon icon-xl")),
    heading(error?.title ?? "Pairing stopped"),
    h("p", { class: "lead error-message", id: "error-message" }, error?.message ?? ""),
    // The core's exact sentence (CLI commands, what LWA said), for developers and support.
    error?.detail
      ? disclosure("result-error-advanced", "Advanced", [
          h("p", { class: "muted small" }, "The exact message:"),
          h("p", { class: "mono small", id: "error-detail" }, error.detail),
        ]).el
      : null,
    h("div", { class: "actions" }, other, primary),
  );
  return { id: "result", el, focus: () => el.querySelector("h1") };
}
