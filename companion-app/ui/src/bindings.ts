// Generated from companion-app/src-tauri/src/ipc.rs by ts-rs: do not edit.
// Regenerate: AVS_UPDATE_BINDINGS=1 cargo test -p avs-companion-app --test ipc_bindings

export type Transport = "wifi" | "ble" | "address";

export type WindowState = "open" | "closed" | "lockedOut";

export type SpeakerView = { 
/**
 * Stable device id (the key of the row).
 */
id: string, 
/**
 * User-visible name.
 */
name: string, 
/**
 * Every way it was seen.
 */
transports: Array<Transport>, 
/**
 * Best address (`IP:PORT`), if reachable over IP.
 */
address: string | null, 
/**
 * Already linked to an account.
 */
paired: boolean, 
/**
 * Its pairing window.
 */
window: WindowState, 
/**
 * When it was last reported, in milliseconds since the Unix epoch.
 */
lastSeenMs: number, 
/**
 * True while a discovery transport holds a live record of it (mDNS drops a record within
 * about 2 minutes of the speaker going silent): "active now". False for a speaker only
 * known from its address: then `last_seen_ms` is when it last answered.
 */
live: boolean, 
/**
 * The speaker said its last check of the internet failed (`net=1` in its mDNS or Bluetooth
 * record): pairing it starts with the Wi-Fi screen. False when it said nothing.
 */
needsNetwork: boolean, };

export type DiscoveryMode = "searching" | "off" | "failed";

export type SpeakersView = { 
/**
 * Discovery state.
 */
discovery: DiscoveryMode, 
/**
 * Why discovery failed or is off.
 */
message: string | null, 
/**
 * Sorted by name.
 */
speakers: Array<SpeakerView>, };

export type RegionView = "na" | "eu" | "fe";

export type RegionChoice = { 
/**
 * The value.
 */
region: RegionView, 
/**
 * What the list shows ("North America").
 */
label: string, };

export type SettingsView = { 
/**
 * LWA client id.
 */
clientId: string, 
/**
 * Redirect URI ("" = the loopback default).
 */
redirectUri: string, 
/**
 * The Amazon region whose sign-in pages and token endpoint are used.
 */
region: RegionView, 
/**
 * LWA base URL ("" = Amazon).
 */
lwaBaseUrl: string, 
/**
 * What an empty redirect URI means.
 */
defaultRedirectUri: string, 
/**
 * Where they are stored.
 */
configPath: string, 
/**
 * True when pairing can start (a client id is set).
 */
ready: boolean, 
/**
 * Every region, in the order the form lists them.
 */
regions: Array<RegionChoice>, };

export type SettingsInput = { 
/**
 * LWA client id ("" = unset).
 */
clientId: string, 
/**
 * Redirect URI ("" = default).
 */
redirectUri: string, 
/**
 * The Amazon region whose sign-in pages and token endpoint are used.
 */
region: RegionView, 
/**
 * LWA base URL ("" = Amazon).
 */
lwaBaseUrl: string, };

export type SettingsField = "clientId" | "redirectUri" | "lwaBaseUrl";

export type CodeStatus = "incomplete" | "valid" | "invalid";

export type CodeFormat = "digits" | "manual" | "qr";

export type SetupCodeCheck = { 
/**
 * How far it is.
 */
status: CodeStatus, 
/**
 * Which form, once recognisable.
 */
format: CodeFormat | null, 
/**
 * A sentence for the user ("" while incomplete and unremarkable).
 */
message: string, 
/**
 * The device a QR payload names.
 */
deviceId: string | null, };

export type PairingStarted = { 
/**
 * Tags every [`PairingEvent`] of this attempt.
 */
pairingId: number, 
/**
 * The speaker's name.
 */
speakerName: string, };

export type Stage = "connect" | "secure" | "signIn" | "handOver" | "exchange";

export type StageState = "active" | "done";

export type ErrorKind = "wrongSetupCode" | "notPairable" | "unreachable" | "signInCancelled" | "signInFailed" | "amazonRefused" | "incompatible" | "settings" | "failure";

export type RetryMode = "sameCode" | "newCode" | "settings" | "chooseSpeaker";

export type PairingErrorView = { 
/**
 * The class.
 */
kind: ErrorKind, 
/**
 * A short heading.
 */
title: string, 
/**
 * The exact reason and what to do: the core's sentence in the window's words (no CLI
 * commands, no quotes of LWA: the core's `Words::plain`).
 */
message: string, 
/**
 * The core's exact sentence, when `message` left something out: shown under Advanced.
 */
detail?: string | null, 
/**
 * The suggested next step.
 */
retry: RetryMode, };

export type WifiNetworkView = { 
/**
 * Its position in the scan: what [`WifiChoiceInput::network`] names (SSIDs are bytes, not
 * always text, so the window never sends a scanned name back).
 */
index: number, 
/**
 * The name for a person (invalid UTF-8 replaced, control characters escaped).
 */
ssid: string, 
/**
 * Signal strength, percent (0-100).
 */
signal: number, 
/**
 * Needs a password (the lock icon).
 */
secured: boolean, 
/**
 * The speaker can join it (not enterprise or WEP).
 */
supported: boolean, 
/**
 * The speaker has a saved profile for it.
 */
known: boolean, };

export type WifiChoiceInput = { 
/**
 * [`WifiNetworkView::index`] of the chosen network; `None` for "Other network…".
 */
network: number | null, 
/**
 * The hidden network's name (with `network: None`).
 */
hiddenSsid: string | null, 
/**
 * The password; `None` or "" for an open network. Redacted in Debug, zeroized on drop.
 */
password: string | null, };

export type AccountView = { 
/**
 * `amzn1.account.…`.
 */
userId: string, 
/**
 * The customer's name, if readable.
 */
name: string | null, 
/**
 * The customer's e-mail address, if readable.
 */
email: string | null, 
/**
 * "Alice Example (alice@example.com)"; "Amazon account amzn1.account.…" without a name and
 * e-mail.
 */
label: string, };

export type PairingEvent = { "type": "stage", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * Which stage.
 */
stage: Stage, 
/**
 * Started or finished.
 */
state: StageState, 
/**
 * What is happening inside it ("Saving the sign-in on the speaker").
 */
detail: string | null, 
/**
 * How long it took (finished stages).
 */
millis: number | null, } | { "type": "signIn", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * The `/ap/oa` URL (public by design: challenge and state are not secrets).
 */
url: string, 
/**
 * True when the redirect comes back by itself (loopback listener); false when the
 * user must paste the address they land on (`paste_redirect`).
 */
automatic: boolean, } | { "type": "browserOpened", 
/**
 * Which attempt.
 */
pairingId: number, } | { "type": "pasteRejected", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * What was wrong and how many pastes are left, as a sentence.
 */
message: string, } | { "type": "wifiChoose", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * The scan, strongest first (hidden networks left out).
 */
networks: Array<WifiNetworkView>, 
/**
 * Why the last join failed ("Wrong password for Home-5G"); `None` the first time.
 */
lastError: string | null, 
/**
 * The network the last join tried (its index), to keep it selected.
 */
lastNetwork: number | null, } | { "type": "wifiProgress", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * What it is doing, in words ("Checking the password").
 */
detail: string, } | { "type": "wifiJoined", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * "on Home-5G at 192.0.2.7".
 */
detail: string, } | { "type": "retrying", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * 1-based.
 */
attempt: number, 
/**
 * What failed.
 */
reason: string, } | { "type": "linked", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * Device id.
 */
speakerId: string, 
/**
 * Its name.
 */
speakerName: string, 
/**
 * The Amazon account, if the speaker read it.
 */
userId: string | null, 
/**
 * Its name and e-mail address too, if the speaker could read them (optional in the
 * bindings: events written before it existed still type-check).
 */
account?: AccountView | null, 
/**
 * Whole pairing, in milliseconds.
 */
totalMillis: number, } | { "type": "confirmAccountSwitch", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * The account the speaker is linked to now.
 */
current: AccountView, 
/**
 * The account that just signed in.
 */
new: AccountView, } | { "type": "keptAccount", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * The account the speaker is still linked to.
 */
account: AccountView, 
/**
 * The account that signed in and was not linked.
 */
notLinked: AccountView | null, } | { "type": "failed", 
/**
 * Which attempt.
 */
pairingId: number, 
/**
 * Why, and what to do.
 */
error: PairingErrorView, } | { "type": "cancelled", 
/**
 * Which attempt.
 */
pairingId: number, };

export type CommandError = { 
/**
 * What went wrong, for the user.
 */
message: string, 
/**
 * The settings field at fault, if any.
 */
field: SettingsField | null, };
