// Settings: the Login with Amazon client id, redirect URI, region and an optional LWA base URL
// (for the emulator). Saved by the Rust side in the config file the CLI uses too.

import type { App, Screen } from "../app";
import { h, svg } from "../dom";
import { heading, lead, screenForm } from "./parts";
import { icons } from "../icons";
import type { Region, SettingsField, SettingsInput } from "../ipc";
import { disclosure } from "../disclosure";

export function settingsScreen(app: App): Screen {
  const s = app.state.settings;
  const field = (
    id: SettingsField,
    label: string,
    help: string,
    value: string,
    attrs: Record<string, string> = {},
  ) => {
    const input = h("input", {
      id,
      name: id,
      class: "input",
      type: "text",
      autocomplete: "off",
      spellcheck: "false",
      value,
      "aria-describedby": `${id}-help ${id}-error`,
      ...attrs,
    });
    const wrap = h(
      "div",
      { class: "field" },
      h("label", { for: id, class: "label" }, label),
      input,
      h("p", { class: "help", id: `${id}-help` }, help),
      h("p", { class: "field-error", id: `${id}-error` }),
    );
    return { input, wrap };
  };

  const clientId = field(
    "clientId",
    "Client ID",
    "From your Login with Amazon security profile. It starts with amzn1.application-oa2-client.",
    s?.clientId ?? "",
    { placeholder: "amzn1.application-oa2-client.…" },
  );
  // The regions come from Rust (SettingsView.regions), never a copy here.
  const region = h(
    "select",
    { id: "region", name: "region", class: "input select" },
    ...(s?.regions ?? []).map((r) => h("option", { value: r.region }, r.label)),
  );
  region.value = s?.region ?? "na";
  const redirect = field(
    "redirectUri",
    "Redirect URI",
    `Leave empty to use ${s?.defaultRedirectUri ?? "http://127.0.0.1/authresponse"} on a free port. It must be one of the profile's Allowed Return URLs.`,
    s?.redirectUri ?? "",
    { placeholder: s?.defaultRedirectUri ?? "http://127.0.0.1/authresponse", inputmode: "url" },
  );
  const base = field(
    "lwaBaseUrl",
    "LWA base URL",
    "Only for testing with the LWA emulator. Leave empty to sign in with Amazon.",
    s?.lwaBaseUrl ?? "",
    { placeholder: "Amazon", inputmode: "url" },
  );
  const saved = h("p", { class: "saved", id: "saved", role: "status" });
  const formError = h("p", { class: "field-error", id: "settings-error", role: "alert" });
  const saveBtn = h("button", { class: "btn btn-primary", type: "submit", id: "save" }, "Save");
  const backBtn = h("button", { class: "btn btn-ghost", type: "button", id: "back" }, "Back");
  backBtn.addEventListener("click", () => app.closeSettings());

  // The developer's Login with Amazon settings: closed unless the client id is still missing
  // (then the app can't pair, and this is what to fill in).
  const advanced = disclosure(
    "settings-advanced",
    "Advanced",
    [
      h(
        "p",
        { class: "help" },
        "From the Login with Amazon security profile of the app's developer. Saved on this computer and shared with the avs-companion command.",
      ),
      clientId.wrap,
      redirect.wrap,
      base.wrap,
      s ? h("p", { class: "muted small config-path" }, "Saved in ", h("span", { class: "mono" }, s.configPath)) : null,
    ],
    { open: !!s && !s.ready },
  );
  const fields = { clientId, redirectUri: redirect, lwaBaseUrl: base };
  function clearErrors(): void {
    formError.textContent = "";
    for (const f of Object.values(fields)) {
      f.input.removeAttribute("aria-invalid");
      f.wrap.querySelector(".field-error")!.textContent = "";
    }
  }

  const form = screenForm(
    "settings-form",
    h(
      "div",
      { class: "title-row" },
      h("button", { class: "btn btn-icon", type: "button", "aria-label": "Back", onclick: () => app.closeSettings() }, svg(icons.back)),
      heading("Settings"),
    ),
    lead("Choose where your Amazon account lives."),
    h("div", { class: "field" }, h("label", { for: "region", class: "label" }, "Region"), region, h("p", { class: "help" }, "Where your Amazon account lives.")),
    advanced.el,
    formError,
    h("div", { class: "actions" }, backBtn, h("div", { class: "actions-end" }, saved, saveBtn)),
  );
  for (const el of [clientId.input, redirect.input, base.input, region]) {
    el.addEventListener("input", () => (saved.textContent = ""));
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    saveBtn.disabled = true;
    const input: SettingsInput = {
      clientId: clientId.input.value,
      redirectUri: redirect.input.value,
      region: region.value as Region,
      lwaBaseUrl: base.input.value,
    };
    try {
      app.state.settings = await app.commands.saveSettings(input);
      saved.textContent = "Saved";
      app.announce("Settings saved.");
    } catch (err) {
      const { message, field: which } = err as { message: string; field: SettingsField | null };
      if (which && fields[which]) {
        const f = fields[which];
        f.input.setAttribute("aria-invalid", "true");
        f.wrap.querySelector(".field-error")!.textContent = message;
        advanced.setOpen(true);
        f.input.focus();
      } else {
        formError.textContent = message;
      }
    } finally {
      saveBtn.disabled = false;
    }
  });
  return {
    id: "settings",
    el: form,
    focus: () => (s && !s.ready ? clientId.input : form.querySelector("h1")),
    onEscape: () => app.closeSettings(),
  };
}
