//! The avs-pair desktop companion: a Tauri 2 window over the companion core library
//! (`companion_app`). It has no pairing logic of its own.
//!
//! | module | concept |
//! |---|---|
//! | [`ipc`] | the typed contract with the window (mirrored in `ui/src/ipc.ts`) |
//! | [`commands`] | the commands the window may call, thin wrappers |
//! | [`speakers`] | the "Speakers nearby" list: discovery + speakers added by address |
//! | [`setup_code`] | checking a setup code as it is typed |
//! | [`pairing`] | one pairing at a time on the async runtime, cancel, retry |
//! | [`browser`] | opening the sign-in page in the system browser, never a web view |
//! | [`errors`] | a failed pairing as the result screen shows it, from the core's failure kinds and words |
//! | [`settings`] | the settings form over the core's config file |
//! | [`state`] | options and managed state |
//!
//! Closing the window cancels a running pairing: the link closes and the redirect listener
//! stops, so the speaker's pairing session ends cleanly.

pub mod account_switch;
pub mod browser;
pub mod commands;
pub mod errors;
pub mod ipc;
pub mod pairing;
pub mod settings;
pub mod setup_code;
pub mod speakers;
pub mod state;
pub mod wifi;
pub mod window_question;

use std::sync::Arc;

use tauri::{Emitter as _, Manager as _, Runtime};

use crate::browser::{SignInOpener, SystemOpener};
use crate::ipc::event;
use crate::pairing::PairingController;
use crate::speakers::Speakers;
pub use crate::state::{AppOptions, AppState};

/// The app's plugins, commands, state and window handling on `builder` (the real runtime, or
/// Tauri's mock runtime in tests).
pub fn builder<R: Runtime>(builder: tauri::Builder<R>, options: AppOptions) -> tauri::Builder<R> {
    builder
        .plugin(tauri_plugin_opener::init())
        .invoke_handler(tauri::generate_handler![
            commands::get_settings,
            commands::save_settings,
            commands::start_discovery,
            commands::search_again,
            commands::add_speaker,
            commands::check_setup_code,
            commands::start_pairing,
            commands::retry_pairing,
            commands::open_sign_in,
            commands::paste_redirect,
            commands::cancel_pairing,
            commands::choose_wifi,
            commands::answer_account_switch,
        ])
        .setup(move |app| {
            manage_state(app.handle(), options);
            Ok(())
        })
}

/// Creates the speakers list and the pairing controller, reporting to the window through events,
/// and hands them to Tauri as managed state. The builder's setup hook calls it once the app is
/// ready; tests on the mock runtime (whose event loop never runs) call it themselves.
pub fn manage_state<R: Runtime>(handle: &tauri::AppHandle<R>, options: AppOptions) {
    let speakers_handle = handle.clone();
    let speakers = Speakers::with_connectors(
        Arc::new(move |view| {
            if let Err(e) = speakers_handle.emit(event::SPEAKERS, view) {
                tracing::warn!("cannot send the speakers list to the window: {e}");
            }
        }),
        options.connectors(),
    );
    let pairing_handle = handle.clone();
    let opener: Arc<dyn SignInOpener> = match &options.opener {
        Some(o) => o.clone(),
        None => Arc::new(SystemOpener::new(handle.clone())),
    };
    let pairing = PairingController::new(
        Arc::new(move |ev| {
            if let Err(e) = pairing_handle.emit(event::PAIRING, ev) {
                tracing::warn!("cannot send a pairing event to the window: {e}");
            }
        }),
        opener,
        speakers.clone(),
    );
    handle.manage(AppState {
        options,
        speakers,
        pairing,
    });
}

/// The app's part of the event loop: closing the window cancels a running pairing (the link
/// closes and the redirect listener stops, so the speaker's session ends cleanly; nobody could
/// finish the sign-in any more), and exiting stops discovery too.
pub fn on_run_event<R: Runtime>(handle: &tauri::AppHandle<R>, event: &tauri::RunEvent) {
    use tauri::{RunEvent, WindowEvent};
    match event {
        RunEvent::WindowEvent {
            event: WindowEvent::CloseRequested { .. } | WindowEvent::Destroyed,
            ..
        } => {
            if let Some(state) = handle.try_state::<AppState>() {
                if state.pairing.cancel() {
                    tracing::info!("window closed: pairing cancelled");
                }
            }
        }
        RunEvent::Exit => {
            if let Some(state) = handle.try_state::<AppState>() {
                state.shutdown();
            }
        }
        _ => {}
    }
}

/// Runs the desktop app (and, on iOS/Android, the mobile entry point).
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AVS_COMPANION_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let options = match AppOptions::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("avs-companion-app: {e}");
            std::process::exit(2);
        }
    };
    let app = match builder(tauri::Builder::default(), options).build(tauri::generate_context!()) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("avs-companion-app: cannot start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| on_run_event(handle, &event));
}
