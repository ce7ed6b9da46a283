// Progress: the stages of the pairing, driven by the Rust side's events (and the speaker's own
// Progress messages while it exchanges the code), with Cancel.

import type { App, Screen } from "../app";
import { h, svg, replaceChildren } from "../dom";
import { heading, lead } from "./parts";
import { icons } from "../icons";
import { duration } from "../format";
import { STAGES } from "../model";
import { disclosure } from "../disclosure";

export function progressScreen(app: App): Screen {
  const list = h("ol", { class: "stages", id: "stages" });
  const notice = h("p", { class: "callout callout-info", id: "retrying", hidden: true, role: "status" });
  const cancelBtn = h("button", { class: "btn btn-ghost", type: "button", id: "cancel" }, "Cancel");
  cancelBtn.addEventListener("click", () => void app.cancel());
  const title = heading();
  // How long each finished stage took: for developers, under Advanced.
  const timings = h("dl", { class: "timings", id: "timings" });
  const advanced = disclosure("progress-advanced", "Advanced", [timings]);

  function render(): void {
    const p = app.state.pairing;
    if (!p) return;
    title.textContent = `Linking ${p.speakerName || "your speaker"}`;
    replaceChildren(
      list,
      STAGES.map((s) => {
        const row = p.stages[s.id];
        const icon =
          row.status === "done"
            ? svg(icons.check, "icon icon-sm")
            : row.status === "active"
              ? h("span", { class: "spinner spinner-sm" })
              : row.status === "failed"
                ? svg(icons.cross, "icon icon-sm")
                : null;
        return h(
          "li",
          { class: `stage ${row.status}`, "data-stage": s.id, "aria-current": row.status === "active" ? "step" : null },
          h("span", { class: "stage-mark", "aria-hidden": "true" }, icon),
          h(
            "span",
            { class: "stage-text" },
            h("span", { class: "stage-label" }, row.status === "done" ? s.doneLabel : s.label),
            row.detail && row.status === "active" ? h("span", { class: "stage-detail" }, row.detail) : null,
          ),
          h("span", { class: "sr-only" }, row.status === "done" ? " (done)" : row.status === "active" ? " (in progress)" : ""),
        );
      }),
    );
    const done = STAGES.filter((s) => p.stages[s.id].status === "done" && p.stages[s.id].millis !== null);
    replaceChildren(
      timings,
      done.length === 0
        ? h("p", { class: "muted small" }, "Timings appear as the steps finish.")
        : done.flatMap((s) => [h("dt", null, s.doneLabel), h("dd", { class: "mono" }, duration(p.stages[s.id].millis!))]),
    );
    notice.hidden = !p.retrying;
    notice.textContent = p.retrying ?? "";
  }

  const el = h(
    "div",
    { class: "screen", id: "progress" },
    title,
    lead("Keep this window open. It takes a few seconds."),
    list,
    notice,
    advanced.el,
    h("div", { class: "actions" }, cancelBtn, h("span")),
  );
  render();
  return { id: "progress", el, update: render, focus: () => title };
}
