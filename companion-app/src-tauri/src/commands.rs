//! The commands the window may call. Each is a thin, typed wrapper: parse, call the core (through
//! [`crate::speakers`], [`crate::pairing`], [`crate::settings`]), answer. All are `async`, so
//! Tauri runs them on its async runtime, never on the UI thread.
//!
//! Every command is listed in `build.rs` (which generates its permission) and granted in
//! `capabilities/default.json`; the UI side is `companion-app/ui/src/ipc.ts`.

use shared_protocol::setup_code::SetupCode;
use tauri::State;

use crate::ipc::{
    CommandError, PairingStarted, SettingsField, SettingsInput, SettingsView, SetupCodeCheck,
    SpeakerView, SpeakersView, WifiChoiceInput,
};
use crate::pairing::PairSettings;
use crate::state::AppState;
use crate::{settings, setup_code};

type Answer<T> = Result<T, CommandError>;

/// The stored settings.
#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Answer<SettingsView> {
    let path = &state.options.config_path;
    Ok(settings::view(&settings::load(path)?, path))
}

/// Checks and stores the settings; answers what is now stored.
#[tauri::command]
pub async fn save_settings(
    state: State<'_, AppState>,
    settings: SettingsInput,
) -> Answer<SettingsView> {
    settings::save(&state.options.config_path, &settings)
}

/// Starts looking for speakers (once) and answers the list; updates follow as `speakers` events.
#[tauri::command]
pub async fn start_discovery(state: State<'_, AppState>) -> Answer<SpeakersView> {
    Ok(state.speakers.start(state.options.mdns))
}

/// Searches again: restarts discovery on every transport and re-checks the speakers added by
/// address (the list's "Search again"); answers the list, updates follow as `speakers` events.
#[tauri::command]
pub async fn search_again(state: State<'_, AppState>) -> Answer<SpeakersView> {
    Ok(state.speakers.search_again(state.options.mdns).await)
}

/// Adds the speaker at `address` (`IP:PORT`) after checking it answers.
#[tauri::command]
pub async fn add_speaker(state: State<'_, AppState>, address: String) -> Answer<SpeakerView> {
    state.speakers.add(&address).await
}

/// How far a typed setup code is (never repeats it).
#[tauri::command]
pub async fn check_setup_code(code: String) -> Answer<SetupCodeCheck> {
    Ok(setup_code::check(&code))
}

/// Starts pairing the speaker `speaker_id` with `setup_code`; progress follows as `pairing`
/// events tagged with the answer's id.
#[tauri::command]
pub async fn start_pairing(
    state: State<'_, AppState>,
    speaker_id: String,
    setup_code: String,
) -> Answer<PairingStarted> {
    let code = SetupCode::parse(&setup_code).map_err(|e| CommandError::new(e.to_string()))?;
    drop(setup_code);
    let settings = pair_settings(&state)?;
    let device = state.speakers.device(&speaker_id).ok_or_else(|| {
        CommandError::new("That speaker is no longer in the list: choose it again.")
    })?;
    Ok(state.pairing.start(device, code, settings))
}

/// Starts again with the same speaker and setup code (after a failure that allows it).
#[tauri::command]
pub async fn retry_pairing(state: State<'_, AppState>) -> Answer<PairingStarted> {
    let settings = pair_settings(&state)?;
    state.pairing.retry(settings)
}

/// Opens the sign-in page of the running pairing in the user's browser.
#[tauri::command]
pub async fn open_sign_in(state: State<'_, AppState>) -> Answer<()> {
    state.pairing.open_sign_in()
}

/// The address the user landed on after signing in (when the redirect can't be caught).
#[tauri::command]
pub async fn paste_redirect(state: State<'_, AppState>, url: String) -> Answer<()> {
    state.pairing.paste_redirect(url)
}

/// The network the user chose on the Wi-Fi screen (answers a `wifiChoose` event). A wrong choice
/// (no password for a secured network, a name too long) is refused here and the screen stays.
#[tauri::command]
pub async fn choose_wifi(state: State<'_, AppState>, choice: WifiChoiceInput) -> Answer<()> {
    state.pairing.choose_wifi(choice)
}

/// The user's answer on the "Replace the account?" screen (answers a `confirmAccountSwitch`
/// event): `true` links the account that just signed in, `false` keeps the linked one.
#[tauri::command]
pub async fn answer_account_switch(state: State<'_, AppState>, replace: bool) -> Answer<()> {
    state.pairing.answer_account_switch(replace)
}

/// Stops the running pairing. Answers whether one was running.
#[tauri::command]
pub async fn cancel_pairing(state: State<'_, AppState>) -> Answer<bool> {
    Ok(state.pairing.cancel())
}

fn pair_settings(state: &AppState) -> Answer<PairSettings> {
    let config = settings::load(&state.options.config_path)?;
    let client_id = config
        .require_client_id()
        .map_err(|_| {
            CommandError::field(
                SettingsField::ClientId,
                "Add your Login with Amazon client id in Settings first (it is in your security profile).",
            )
        })?
        .clone();
    let redirect = config
        .redirect_target()
        .map_err(|e| CommandError::field(SettingsField::RedirectUri, e.to_string()))?;
    let authorize_endpoint = config
        .endpoints()
        .map_err(|e| CommandError::field(SettingsField::LwaBaseUrl, e.to_string()))?
        .authorize;
    Ok(PairSettings {
        client_id,
        redirect,
        authorize_endpoint,
    })
}
