// Replace the account? (issue 15.5) The speaker is linked to one Amazon account and someone just
// signed in with another: both are shown, and nothing changes on the speaker until the user
// presses Replace. Keep (or Escape, or no answer in time) leaves the speaker as it was; the
// speaker throws the new sign-in away. Also the result shown after Keep.

import type { App, Screen } from "../app";
import { h, svg } from "../dom";
import { heading } from "./parts";
import { icons } from "../icons";
import type { AccountView } from "../ipc";

/** An account as a card: the caption, then "Alice Example (alice@example.com)" (the bare id
 * when the speaker could not read the name: the caption already says "Amazon account", which
 * `label` starts with then). */
export function accountCard(id: string, caption: string, a: AccountView): HTMLElement {
  const idOnly = !a.name && !a.email;
  return h(
    "div",
    { class: "account", id },
    svg(icons.account, "icon"),
    h("div", null, h("span", { class: "muted" }, caption), h("span", { class: idOnly ? "mono account-id" : "account-name" }, idOnly ? a.userId : a.label)),
  );
}

export function accountSwitchScreen(app: App): Screen {
  const q = app.state.pairing?.switchQuestion;
  const speaker = app.state.pairing?.speakerName || "This speaker";
  const error = h("p", { class: "field-error", id: "switch-error", role: "alert", hidden: true });
  const keep = h("button", { class: "btn btn-ghost", type: "button", id: "keep-account" }, "Keep");
  const replace = h("button", { class: "btn btn-primary", type: "button", id: "replace-account" }, "Replace");
  async function answer(yes: boolean): Promise<void> {
    keep.disabled = true;
    replace.disabled = true;
    try {
      await app.answerAccountSwitch(yes);
    } catch (e) {
      keep.disabled = false;
      replace.disabled = false;
      error.textContent = (e as { message?: string }).message ?? "Something went wrong.";
      error.hidden = false;
    }
  }
  keep.addEventListener("click", () => void answer(false));
  replace.addEventListener("click", () => void answer(true));
  const el = h(
    "div",
    { class: "screen account-switch", id: "account-switch" },
    heading("Replace the Amazon account?"),
    h(
      "p",
      { class: "lead", id: "switch-question" },
      q ? `${speaker} is linked to ${q.current.label}. Replace it with ${q.next.label}?` : "",
    ),
    q ? accountCard("current-account", "Linked now", q.current) : null,
    q ? accountCard("new-account", "Just signed in", q.next) : null,
    h("p", { class: "muted small" }, "Keep leaves the speaker as it is; the new sign-in is not used."),
    error,
    h("div", { class: "actions" }, keep, replace),
  );
  // The safe answer has focus: Enter never replaces an account by accident.
  return { id: "accountSwitch", el, focus: () => keep, onEscape: () => void answer(false) };
}

/** The result after Keep: the speaker stays linked to the account it had. */
export function keptResult(app: App, account: AccountView, notLinked: AccountView | null): Screen {
  const done = h("button", { class: "btn btn-primary", type: "button", id: "done" }, "Done");
  done.addEventListener("click", () => app.doneWithResult());
  const speaker = app.state.pairing?.speakerName || "Your speaker";
  const el = h(
    "div",
    { class: "screen result result-ok", id: "result", "data-kind": "kept" },
    h("div", { class: "result-icon ok" }, svg(icons.checkCircle, "icon icon-xl")),
    heading(`${speaker} is still linked to ${account.name ?? account.email ?? account.label}`),
    h(
      "p",
      { class: "lead", id: "kept-message" },
      notLinked
        ? `Nothing changed: it stays linked to ${account.label}. ${notLinked.label} was not linked.`
        : `Nothing changed: it stays linked to ${account.label}.`,
    ),
    accountCard("account", "Amazon account", account),
    h("div", { class: "actions" }, h("span"), done),
  );
  return { id: "result", el, focus: () => done };
}
