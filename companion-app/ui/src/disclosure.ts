// "Advanced": a button that shows or hides a panel (aria-expanded, aria-controls), closed by
// default. Developer material (agent commands, stage timings, the client id and LWA settings,
// ids) sits behind one, so the setup flow shows people only what they need. A real <button>:
// in the Tab order, Enter and Space toggle it, and screen readers announce expanded/collapsed.

import { h, svg } from "./dom";
import { icons } from "./icons";

export interface Disclosure {
  /** The toggle and the panel, to place on the screen. */
  el: HTMLElement;
  toggle: HTMLButtonElement;
  panel: HTMLElement;
  setOpen(open: boolean): void;
  isOpen(): boolean;
}

type Child = Node | string | null | undefined | false;

/** A disclosure whose panel has id `id` and whose toggle has id `${id}-toggle`. */
export function disclosure(id: string, label: string, children: Child[], opts: { open?: boolean } = {}): Disclosure {
  const toggle = h(
    "button",
    {
      class: "btn btn-link disclosure-toggle",
      type: "button",
      id: `${id}-toggle`,
      "aria-expanded": "false",
      "aria-controls": id,
    },
    svg(icons.chevron, "icon icon-sm disclosure-chevron"),
    label,
  );
  const panel = h("div", { class: "disclosure-panel", id, hidden: true }, ...children);
  const setOpen = (open: boolean) => {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
  };
  toggle.addEventListener("click", () => setOpen(panel.hidden));
  setOpen(!!opts.open);
  return {
    el: h("div", { class: "disclosure" }, toggle, panel),
    toggle,
    panel,
    setOpen,
    isOpen: () => !panel.hidden,
  };
}
