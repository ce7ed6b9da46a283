// The pieces every screen starts with, so the screens look and behave alike: the form that holds
// a screen, its title and the sentence under the title.

import { h, type Child } from "../dom";

/**
 * A screen that is a form: Enter in a field submits it. The screen checks its own fields and
 * says what is wrong next to them, so the browser's validation bubbles are off (novalidate).
 */
export function screenForm(id: string, ...children: (Child | Child[])[]): HTMLFormElement {
  return h("form", { class: "screen", id, novalidate: true }, ...children);
}

/**
 * A screen's title. Focus lands on it when the screen is shown (App.show), so a screen reader
 * starts there: focusable by script, not a Tab stop (tabindex -1).
 */
export function heading(...children: (Child | Child[])[]): HTMLHeadingElement {
  return h("h1", { tabindex: "-1" }, ...children);
}

/** The sentence under a screen's title: what this step is for. */
export function lead(...children: (Child | Child[])[]): HTMLParagraphElement {
  return h("p", { class: "lead" }, ...children);
}
