// Keeps the focused field in sight when an on-screen keyboard opens. The phone builds (Tauri's
// iOS/Android targets use this same web UI) cover the bottom ~40% of the screen with the
// keyboard; a field near the bottom would be typed into blind. On focus, a text field is
// scrolled to the upper part of the page: its top at about a fifth of the window's height, with
// the page given room below it to get there. Only where an on-screen keyboard is likely (a
// touch screen, or a phone-wide window, which is what the phone builds and their tests are): a
// desktop window has no such keyboard and nothing moves there.

const TEXT_TYPES = new Set(["text", "url", "email", "password", "search", "tel", "number"]);

function isTextField(el: EventTarget | null): el is HTMLInputElement | HTMLTextAreaElement {
  if (el instanceof HTMLTextAreaElement) return true;
  return el instanceof HTMLInputElement && TEXT_TYPES.has(el.type);
}

/** The part of the window a keyboard leaves free: the top 60%. */
export const KEYBOARD_FREE_SHARE = 0.6;

/** Where an on-screen keyboard is likely (same breakpoint as the 44 px tap targets). */
const ON_SCREEN_KEYBOARD = "(pointer: coarse), (max-width: 34rem)";

/** Scrolls `el` into the keyboard-free part of the window if it is not there already. */
export function keepInSight(el: Element): void {
  if (!window.matchMedia(ON_SCREEN_KEYBOARD).matches) return;
  const vh = window.visualViewport?.height ?? window.innerHeight;
  const r = el.getBoundingClientRect();
  if (r.top >= 0 && r.bottom <= vh * KEYBOARD_FREE_SHARE) return;
  const target = window.scrollY + r.top - vh * 0.2;
  // Room to scroll: a spacer as tall as the keyboard at the end of the page.
  const spacer = document.getElementById("keyboard-room");
  if (spacer) spacer.style.height = `${Math.ceil(vh * (1 - KEYBOARD_FREE_SHARE))}px`;
  window.scrollTo({ top: Math.max(0, target), behavior: "instant" as ScrollBehavior });
}

/** Installs the handlers (once, for the whole app): on focus in `root`, and when the visible
 * part of the window shrinks (a mobile webview's keyboard opening over an already focused field). */
export function keepFocusedFieldsInSight(root: HTMLElement): void {
  root.addEventListener("focusin", (e) => {
    if (isTextField(e.target)) keepInSight(e.target);
  });
  window.visualViewport?.addEventListener("resize", () => {
    const el = document.activeElement;
    if (isTextField(el) && root.contains(el)) keepInSight(el);
  });
}
