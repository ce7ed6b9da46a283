// Speakers nearby: the live list, an empty state that explains pairing mode, and adding a speaker
// by address. The list box keeps its height whether it shows the empty state or rows, so nothing
// below it moves when a speaker appears.

import type { App, Screen } from "../app";
import { h, svg, replaceChildren } from "../dom";
import { lead, screenForm } from "./parts";
import { icons } from "../icons";
import { freshness, speakerStatus, transportText } from "../format";
import type { SpeakerView } from "../ipc";
import { disclosure } from "../disclosure";

export function speakersScreen(app: App): Screen {
  const status = h("p", { class: "discovery-status", id: "discovery-status" });
  const list = h("div", {
    class: "speaker-list",
    id: "speaker-list",
    role: "radiogroup",
    "aria-labelledby": "speakers-title",
  });
  const continueBtn = h(
    "button",
    { class: "btn btn-primary", type: "submit", id: "continue", disabled: true },
    "Continue",
  );
  const settingsNote = h("div", { class: "callout callout-info", id: "settings-note", hidden: true });

  // Add by address.
  const addrInput = h("input", {
    id: "address",
    class: "input",
    type: "text",
    inputmode: "url",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "192.168.1.20:4100",
    "aria-describedby": "address-help address-error",
  });
  const addrError = h("p", { class: "field-error", id: "address-error", role: "alert" });
  const addrBtn = h("button", { class: "btn btn-secondary", type: "submit", id: "add-address" }, "Add");
  const addrForm = h(
    "form",
    { class: "address-form", id: "address-form", hidden: true, novalidate: true },
    h("label", { for: "address", class: "label" }, "Speaker address"),
    h("div", { class: "input-row" }, addrInput, addrBtn),
    h("p", { class: "help", id: "address-help" }, "The IP address and port the speaker shows, like 192.168.1.20:4100."),
    addrError,
  );
  const addrToggle = h(
    "button",
    {
      class: "btn btn-link",
      type: "button",
      id: "toggle-address",
      "aria-expanded": "false",
      "aria-controls": "address-form",
    },
    svg(icons.plus, "icon icon-sm"),
    "Add a speaker by address",
  );
  addrToggle.addEventListener("click", () => {
    const open = addrForm.hidden;
    addrForm.hidden = !open;
    addrToggle.setAttribute("aria-expanded", String(open));
    if (open) addrInput.focus();
  });
  addrForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    addrError.textContent = "";
    addrInput.removeAttribute("aria-invalid");
    addrBtn.disabled = true;
    addrBtn.textContent = "Checking…";
    try {
      const speaker = await app.commands.addSpeaker(addrInput.value);
      app.state.selectedId = speaker.id;
      addrInput.value = "";
      addrForm.hidden = true;
      addrToggle.setAttribute("aria-expanded", "false");
      app.announce(`${speaker.name} added.`);
      render();
      list.querySelector<HTMLInputElement>(`input[value="${CSS.escape(speaker.id)}"]`)?.focus();
    } catch (err) {
      addrError.textContent = (err as { message: string }).message;
      addrInput.setAttribute("aria-invalid", "true");
      addrInput.focus();
    } finally {
      addrBtn.disabled = false;
      addrBtn.textContent = "Add";
    }
  });

  // With speakers listed, "Search again" sits left of Continue (the empty list has its own
  // button): for the speaker that isn't there yet. Invisible, not removed, while the list is
  // empty, so Continue keeps its place.
  const againLink = h(
    "button",
    { class: "btn btn-ghost", type: "button", id: "search-again-list" },
    svg(icons.refresh, "icon icon-sm"),
    "Search again",
  );
  againLink.addEventListener("click", () => void searchAgain());
  const form = screenForm(
    "speakers-form",
    h("h1", { id: "speakers-title", tabindex: "-1" }, "Set up a speaker"),
    lead("Choose the speaker to link to your Amazon account."),
    settingsNote,
    status,
    list,
    h("div", { class: "below-list" }, addrToggle, addrForm),
    h("div", { class: "actions" }, againLink, continueBtn),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const s = app.selected();
    if (s && speakerStatus(s).pairable) app.choose(s.id);
  });
  list.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.target as HTMLElement).matches("input[type=radio]")) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  let lastKey = "";
  function render(): void {
    const { speakers, discovery, message } = app.state.speakers;
    const settings = app.state.settings;
    settingsNote.hidden = !settings || settings.ready;
    if (settings && !settings.ready && !settingsNote.hasChildNodes()) {
      settingsNote.append(
        h("p", null, h("strong", null, "One thing first: "), "add the Login with Amazon client id of your security profile."),
        h("button", { class: "btn btn-secondary btn-sm", type: "button", onclick: () => app.openSettings() }, "Open settings"),
      );
    }

    againLink.style.visibility = speakers.length === 0 ? "hidden" : "";
    againLink.setAttribute("aria-disabled", String(searchingAgain));
    const searching = discovery === "searching";
    replaceChildren(
      status,
      h("span", { class: `pulse ${searching ? "on" : "off"}`, "aria-hidden": "true" }),
      searching
        ? speakers.length === 0
          ? "Searching this network…"
          : `${speakers.length} speaker${speakers.length === 1 ? "" : "s"} nearby · still searching`
        : (message ?? "Automatic discovery is off."),
    );

    // Pre-select the only speaker ready to pair.
    const pairable = speakers.filter((s) => speakerStatus(s).pairable);
    if (!app.state.selectedId && pairable.length === 1) app.state.selectedId = pairable[0].id;
    const sel = app.selected();
    continueBtn.disabled = !(sel && speakerStatus(sel).pairable);

    const key = JSON.stringify([speakers.map((s) => [s.id, s.name, s.window, s.paired, s.transports, s.address, s.needsNetwork]), app.state.selectedId, discovery, searchingAgain]);
    const now = Date.now();
    if (key === lastKey) {
      // Only the freshness text changes.
      for (const s of speakers) {
        const el = list.querySelector<HTMLElement>(`[data-seen="${CSS.escape(s.id)}"]`);
        if (el) el.textContent = seenText(s, now);
      }
      return;
    }
    lastKey = key;
    const focusedId = (document.activeElement as HTMLInputElement | null)?.closest?.("#speaker-list")
      ? (document.activeElement as HTMLInputElement).value
      : null;
    // Never shrink while shown: the rows take the empty state's place without moving what is
    // below (at any width or zoom, not just the one the CSS min-height was chosen for).
    const height = list.isConnected ? list.getBoundingClientRect().height : 0;
    if (height > 0) {
      const locked = Math.max(height, parseFloat(list.style.minHeight) || 0);
      list.style.minHeight = `${locked}px`;
    }
    const againHadFocus = document.activeElement?.id === "search-again";
    if (speakers.length === 0) {
      const advancedOpen = list.querySelector("#empty-advanced-toggle")?.getAttribute("aria-expanded") === "true";
      list.classList.add("is-empty");
      replaceChildren(list, emptyState(discovery === "searching", advancedOpen));
      if (againHadFocus) list.querySelector<HTMLElement>("#search-again")?.focus();
    } else {
      list.classList.remove("is-empty");
      replaceChildren(list, speakers.map((s) => row(s, now)));
      // Searched again and found: focus goes to the list (the button is gone), not the page.
      if (againHadFocus) list.querySelector<HTMLInputElement>("input:checked, input:not(:disabled)")?.focus();
    }
    if (focusedId) list.querySelector<HTMLInputElement>(`input[value="${CSS.escape(focusedId)}"]`)?.focus();
  }

  function seenText(s: SpeakerView, now: number): string {
    return freshness(s, now).text;
  }

  function row(s: SpeakerView, now: number): HTMLElement {
    const st = speakerStatus(s);
    const checked = app.state.selectedId === s.id;
    const input = h("input", {
      type: "radio",
      name: "speaker",
      value: s.id,
      id: `speaker-${s.id}`,
      class: "sr-only-radio",
      checked,
      disabled: !st.pairable,
      "aria-describedby": `speaker-${s.id}-meta`,
    });
    input.addEventListener("change", () => {
      app.state.selectedId = s.id;
      render();
    });
    const fresh = freshness(s, now).fresh;
    return h(
      "label",
      {
        class: `speaker-row${checked ? " selected" : ""}${st.pairable ? "" : " disabled"}`,
        for: `speaker-${s.id}`,
        "data-id": s.id,
      },
      input,
      h("span", { class: "speaker-icon" }, svg(icons.speaker)),
      h(
        "span",
        { class: "speaker-text" },
        h("span", { class: "speaker-name" }, s.name || "Unnamed speaker"),
        h(
          "span",
          { class: "speaker-meta", id: `speaker-${s.id}-meta` },
          h("span", { class: `fresh-dot${fresh ? " fresh" : ""}`, "aria-hidden": "true" }),
          h("span", null, transportText(s.transports)),
          s.address ? h("span", { class: "mono" }, s.address) : null,
          h("span", { "data-seen": s.id }, seenText(s, now)),
          st.hint ? h("span", { class: "speaker-hint" }, st.hint) : null,
          s.needsNetwork
            ? h(
                "span",
                { class: "speaker-hint speaker-offline", id: `speaker-${s.id}-offline` },
                svg(icons.wifi, "icon icon-xs"),
                "Not online yet: you'll choose its Wi-Fi network during setup.",
              )
            : null,
        ),
      ),
      h("span", { class: `chip chip-${st.tone}` }, st.label),
      h("span", { class: "radio-mark", "aria-hidden": "true" }, svg(icons.check, "icon icon-sm")),
    );
  }

  // "Search again": restarts discovery on every transport and re-checks speakers added by
  // address (search_again), so a speaker whose pairing mode was just turned on shows up now.
  let searchingAgain = false;
  async function searchAgain(): Promise<void> {
    if (searchingAgain) return;
    searchingAgain = true;
    app.announce("Searching again…");
    render();
    try {
      app.setSpeakers(await app.commands.searchAgain());
      const n = app.state.speakers.speakers.length;
      app.announce(n === 0 ? "Searched again: no speakers yet." : `Searched again: ${n} speaker${n === 1 ? "" : "s"} found.`);
    } catch (err) {
      app.announce((err as { message: string }).message);
    } finally {
      searchingAgain = false;
      render();
    }
  }

  function emptyState(searching: boolean, advancedOpen: boolean): HTMLElement {
    // What a person can do: steps on the speaker itself, then search again. The agent's own
    // commands (for whoever runs the speaker software) are under Advanced.
    const advanced = disclosure(
      "empty-advanced",
      "Advanced",
      [
        h(
          "p",
          null,
          "Running the speaker software yourself? On the speaker, ",
          h("code", null, "avs-device-agent pair"),
          " turns pairing mode on for 15 minutes and ",
          h("code", null, "avs-device-agent status"),
          " shows whether it is on.",
        ),
      ],
      { open: advancedOpen },
    );
    const again = h(
      "button",
      { class: "btn btn-secondary", type: "button", id: "search-again", "aria-disabled": searchingAgain ? "true" : null },
      svg(icons.refresh, "icon icon-sm"),
      searchingAgain ? "Searching…" : "Search again",
    );
    again.addEventListener("click", () => void searchAgain());
    return h(
      "div",
      { class: "empty", id: "empty-state" },
      h("div", { class: "empty-art", "aria-hidden": "true" }, svg(icons.speaker, "icon icon-lg"), h("span", { class: "ring r1" }), h("span", { class: "ring r2" })),
      h("h2", null, searching ? "Looking for speakers…" : "No speakers yet"),
      h(
        "ol",
        { class: "empty-steps", id: "empty-steps" },
        h("li", null, "Plug in the speaker and keep it near this ", searching ? "computer, on the same Wi-Fi." : "computer."),
        h(
          "li",
          null,
          h("strong", null, "Press the pairing button"),
          " on the speaker: pairing mode stays on for 15 minutes. (A new speaker starts in pairing mode.)",
        ),
        h("li", null, "Then choose ", h("strong", null, "Search again"), "."),
      ),
      h("div", { class: "empty-actions" }, again, advanced.toggle),
      advanced.panel,
      searching ? null : h("p", { class: "muted" }, "Or add it by its address, below."),
    );
  }

  // Freshness text ticks every 5 s.
  const timer = window.setInterval(render, 5000);
  render();
  return {
    id: "speakers",
    el: form,
    update: render,
    dispose: () => window.clearInterval(timer),
    focus: () => form.querySelector("h1"),
  };
}
