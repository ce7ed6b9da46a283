//! The token store survives being killed at any instant: a child process (this test binary,
//! re-executed) rewrites the store in a tight loop; the parent SIGKILLs it at random moments,
//! many times, and after each kill the file must load as a whole, recent record.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use device_agent::store::{LoadOutcome, StoredTokens, TokenStore};
use rand::Rng as _;
use shared_protocol::ids::ClientId;
use shared_protocol::secret::RefreshToken;

const DIR_ENV: &str = "AVS_STORE_KILL_DIR";
const ROUND_ENV: &str = "AVS_STORE_KILL_ROUND";

/// Child mode: only does something when re-executed by the test below.
#[test]
#[ignore = "child process of store_survives_kill_at_random_points"]
fn store_writer_child() {
    common::child::as_child(DIR_ENV, |dir| {
        let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
        let store = TokenStore::open(dir).unwrap();
        for i in 0u64.. {
            store
                .save(&StoredTokens {
                    // Long, varying content so a torn write would show.
                    refresh_token: RefreshToken::new(format!(
                        "Atzr|{round}-{i}-{}",
                        "x".repeat((i % 900) as usize)
                    )),
                    client_id: ClientId::new("amzn1.application-oa2-client.kill"),
                    account: None,
                    verified: true,
                })
                .unwrap();
            if i == 0 {
                println!("WRITER_READY");
            }
        }
    });
}

fn parse(token: &str) -> (u64, u64) {
    let body = token.strip_prefix("Atzr|").expect("prefix");
    let mut parts = body.splitn(3, '-');
    let round = parts.next().unwrap().parse().unwrap();
    let i: u64 = parts.next().unwrap().parse().unwrap();
    let pad = parts.next().unwrap();
    assert_eq!(pad.len() as u64, i % 900, "torn record");
    (round, i)
}

#[test]
fn store_survives_kill_at_random_points() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    for round in 0..40u64 {
        let mut child = Command::new(&exe)
            .args(common::child::args("store_writer_child"))
            .env(DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = lines.next().expect("child exited early").unwrap();
            if line.contains("WRITER_READY") {
                break;
            }
            assert!(Instant::now() < deadline, "child never became ready");
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..20_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let store = TokenStore::open(dir.path()).unwrap();
        match store.load().unwrap() {
            LoadOutcome::Loaded(t) => {
                let (r, _) = parse(t.refresh_token.expose_secret());
                assert_eq!(r, round, "the newest round's record must be on disk");
            }
            other => panic!("after kill {kills}: {other:?}"),
        }
        // No temp file survives a reopen.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "tokens.json")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    assert_eq!(kills, 40);
}

// ---------------------------------------------------------------------------------------------
// The real agent process, killed while it writes its token store and its pairing state.
// ---------------------------------------------------------------------------------------------

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use device_agent::pairing::{Pairing, PairingConfig, PAIRING_FILE};
use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::{Emulator, RunningEmulator};
use rand::{rngs::StdRng, SeedableRng as _};
use shared_protocol::message::{ErrorKind, PairingWindow};
use shared_protocol::session::HandshakeError;

mod common;
// The agent's setup code in these rounds is `common::CODE`; the guesser types `WRONG_CODE`.
use common::process::{run_command, AgentProcess};
use common::WRONG_CODE;

/// The agent's default `max_failures`: the attempt that locks the window.
const MAX_FAILURES: u64 = 20;
/// The kill lands uniformly in this window after the writers start.
const KILL_WINDOW_US: u64 = 400_000;

/// The agent on `state`, linked through `emu`.
fn start_agent(emu: &RunningEmulator, state: &Path) -> AgentProcess {
    AgentProcess::spawn(
        run_command(state, emu.base_url(), "KILL-TEST-1")
            // Attempts back to back: as many as the agent can count (the 1 s pacing would turn
            // most of them into `busy`; it is tested elsewhere; here the point is many writes
            // to kill).
            .env("AVS_AGENT_ATTEMPT_INTERVAL_SECS", "0")
            .env(
                "AVS_AGENT_LOG",
                std::env::var("AVS_KILL_AGENT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stderr(if std::env::var_os("AVS_KILL_AGENT_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }),
    )
}

/// One request line to the agent's local API, one answer line back (a close without one is
/// `UnexpectedEof`).
async fn api(socket: &str, req: serde_json::Value) -> std::io::Result<serde_json::Value> {
    let within = Duration::from_secs(30);
    common::api_line(Path::new(socket), &req, within)
        .await?
        .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
}

async fn current_token(socket: &str) -> std::io::Result<Option<String>> {
    let answer = api(socket, serde_json::json!({"op": "token"})).await?;
    Ok(answer["access_token"].as_str().map(str::to_owned))
}

/// Waits (deadline 30 s) for an access token different from `old`.
async fn next_token(socket: &str, old: Option<&str>) -> std::io::Result<String> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = current_token(socket).await? {
            if Some(t.as_str()) != old {
                return Ok(t);
            }
        }
        if Instant::now() > end {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no new access token in 30 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The refresh tokens the agent sent, in order (fingerprints as the emulator records them),
/// for the successful refreshes only.
fn refresh_inputs(emu: &RunningEmulator) -> Vec<String> {
    emu.requests()
        .into_iter()
        .filter(|r| r.is_token_grant("refresh_token") && r.status == Some(200))
        .filter_map(|r| r.param("refresh_token").map(str::to_owned))
        .collect()
}

/// True when `disk` (a fingerprint) is older than the refresh token of the last acknowledged
/// refresh: the successful refreshes of a round sent R_-1 (the token on disk at start), R_0, …
/// in order, and the `acked` access tokens the driver saw after the startup one came with
/// R_1 … R_acked, so the inputs of the first `acked + 1` refreshes are all superseded by an
/// acknowledged token.
fn is_stale(disk: &str, inputs: &[String], acked: u64) -> bool {
    let superseded = usize::try_from(acked).map_or(inputs.len(), |a| a + 1);
    inputs[..inputs.len().min(superseded)]
        .iter()
        .any(|i| i == disk)
}

#[test]
fn the_lost_token_check_can_fail() {
    let inputs: Vec<String> = ["r-1", "r0", "r1", "r2"].map(String::from).to_vec();
    // Two new tokens acknowledged after the startup one: R_2 (input of the 4th refresh) or a
    // newer one must be on disk.
    assert!(is_stale("r-1", &inputs, 2));
    assert!(is_stale("r1", &inputs, 2));
    assert!(!is_stale("r2", &inputs, 2));
    assert!(!is_stale("r3-never-sent", &inputs, 2));
    // Nothing acknowledged after startup: only the startup input is stale.
    assert!(is_stale("r-1", &inputs, 0));
    assert!(!is_stale("r0", &inputs, 0));
}

#[derive(Debug, serde::Deserialize)]
struct PairingFile {
    failures: u64,
    /// The lockout's remaining seconds (kept as time left, not a wall-clock deadline).
    #[serde(default)]
    locked_for_secs: Option<u64>,
}

/// What one kill round saw and found.
#[derive(Debug, Default)]
struct KillTotals {
    kills: u64,
    tokens_acknowledged: u64,
    attempts_acknowledged: u64,
    lockouts_acknowledged: u64,
    temp_files_left: u64,
    lockouts_on_disk: u64,
    unanswered_attempts: u64,
}

/// `kills` rounds: start the agent on its store, make it rewrite `tokens.json` (AVS reports
/// every new access token as refused, so the agent refreshes and stores the rotated refresh
/// token) and `pairing.json` (wrong setup codes, up to the lockout) as fast as it can, SIGKILL
/// it at a random instant, and check what is on disk against what the agent had acknowledged.
async fn kill_agent_rounds(kills: u64, seed: u64) -> KillTotals {
    use rand::Rng as _;
    let emu = Emulator::builder()
        .rotate_refresh_tokens(24 * 3600)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Linked: the store holds a refresh token the emulator issued.
    let granted = emu
        .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)
        .unwrap();
    TokenStore::open(&state)
        .unwrap()
        .save(&StoredTokens {
            refresh_token: granted.refresh_token.clone().unwrap(),
            client_id: ClientId::new(DEFAULT_DEVICE_CLIENT_ID),
            account: None,
            verified: true,
        })
        .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut totals = KillTotals::default();
    // The refresh token on disk after the previous kill: the restarted agent must refresh with
    // exactly it (proves the fingerprint comparison below is comparing the right things).
    let mut expected_first_input: Option<String> = None;
    for round in 0..kills {
        emu.clear_requests();
        // Earlier wrong codes (as a previous boot left them), so that many rounds reach the
        // lockout within the kill window.
        // Every fourth round starts one wrong code short of the lockout, so its first answered
        // attempt is followed by the lockout write.
        let initial = if round % 4 == 0 {
            MAX_FAILURES - 1
        } else {
            rng.gen_range(0..MAX_FAILURES)
        };
        device_agent::atomic_file::write_atomic(
            &state.join(PAIRING_FILE),
            format!(r#"{{"failures":{initial},"lockouts":0,"locked_for_secs":null}}"#).as_bytes(),
        )
        .unwrap();
        let agent = start_agent(&emu, &state);
        // The startup refresh from the store.
        let first = next_token(&agent.socket(), None).await.unwrap_or_else(|e| {
            panic!("round {round}: the restarted agent never got a token from its store: {e}")
        });
        let inputs = refresh_inputs(&emu);
        if let Some(expected) = expected_first_input.take() {
            assert_eq!(
                inputs.first(),
                Some(&expected),
                "round {round}: the restarted agent did not refresh with the token on disk"
            );
        }
        let window = api(&agent.socket(), serde_json::json!({"op": "pair"}))
            .await
            .unwrap();
        assert_eq!(window["type"], "window", "round {round}: {window}");

        let tokens = Arc::new(AtomicU64::new(0));
        let attempts = Arc::new(AtomicU64::new(0));
        let locked = Arc::new(AtomicBool::new(false));
        let others = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let refresher = tokio::spawn({
            let socket = agent.socket();
            let tokens = tokens.clone();
            async move {
                let mut current = first;
                loop {
                    // AVS refused it: the agent refreshes, stores the rotated refresh token,
                    // then publishes the new access token.
                    let req = serde_json::json!({"op": "auth_failure", "token": current});
                    if api(&socket, req).await.is_err() {
                        return;
                    }
                    match next_token(&socket, Some(&current)).await {
                        Ok(t) => {
                            tokens.fetch_add(1, Ordering::SeqCst);
                            current = t;
                        }
                        Err(_) => return,
                    }
                }
            }
        });
        let guesser = tokio::spawn({
            let link = agent.link();
            let attempts = attempts.clone();
            let locked = locked.clone();
            let others = others.clone();
            async move {
                let wrong = shared_protocol::setup_code::SetupCode::parse(WRONG_CODE).unwrap();
                loop {
                    // A dead agent refuses the connection: the round is over.
                    let Ok(Ok(stream)) = tokio::time::timeout(
                        Duration::from_secs(10),
                        tokio::net::TcpStream::connect(link),
                    )
                    .await
                    else {
                        return;
                    };
                    let hello = shared_protocol::message::Hello::new(
                        shared_protocol::message::Role::Companion,
                        "store_kill",
                    );
                    let t = shared_protocol::frame::StreamTransport::new(stream);
                    let attempt = async {
                        let hs = shared_protocol::session::ClientHandshake::start(t, hello).await?;
                        hs.authenticate(&wrong).await.map(drop)
                    };
                    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
                        // The agent answered the PAKE, so it had counted the attempt on disk.
                        Ok(Err(HandshakeError::WrongSetupCode)) => {
                            attempts.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Err(HandshakeError::Peer(body)))
                            if body.kind == ErrorKind::LockedOut =>
                        {
                            locked.store(true, Ordering::SeqCst);
                            return;
                        }
                        Ok(Ok(())) => panic!("a wrong code was accepted"),
                        // Not answered (the agent was killed mid-attempt, or refused it):
                        // not acknowledged; try again while the agent lives.
                        Ok(Err(e)) => {
                            others.lock().unwrap().push(format!("{e:?}"));
                        }
                        Err(_) => return,
                    }
                }
            }
        });
        // The kill lands anywhere in the first 400 ms of writing (a refresh cycle and an
        // attempt each take a few milliseconds; the lockout comes after 20 attempts).
        let max_us: u64 = std::env::var("AVS_KILL_WINDOW_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(KILL_WINDOW_US, |ms| ms * 1000);
        tokio::time::sleep(Duration::from_micros(rng.gen_range(0..max_us))).await;
        drop(agent); // SIGKILL, then reaped.
        totals.kills += 1;
        // Both drivers end on the dead socket; only then are their counts final.
        for task in [refresher, guesser] {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("driver ends after the kill")
                .unwrap();
        }
        let acked_tokens = tokens.load(Ordering::SeqCst);
        let acked_attempts = attempts.load(Ordering::SeqCst);
        let saw_lockout = locked.load(Ordering::SeqCst);
        totals.tokens_acknowledged += acked_tokens;
        totals.attempts_acknowledged += acked_attempts;
        totals.lockouts_acknowledged += u64::from(saw_lockout);

        // A kill in the middle of a write leaves a temp file (removed at the next start).
        totals.temp_files_left += std::fs::read_dir(&state)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .count() as u64;
        for e in std::fs::read_dir(&state).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".corrupt-"), "round {round}: {name}");
        }

        // Tokens: the file loads, and holds the refresh token of the last acknowledged
        // refresh or of the one in flight, never an older one. The successful refreshes this
        // round sent R_-1 (from disk), R_0 … in order; the acknowledged access tokens came with
        // R_0 … R_acked, so the inputs of the first acked+1 refreshes are all stale.
        let store = TokenStore::open(&state).unwrap();
        let on_disk = match store.load().unwrap() {
            LoadOutcome::Loaded(t) => t,
            other => panic!("round {round}: token store after the kill: {other:?}"),
        };
        let disk_fp =
            lwa_emulator::redact::param("refresh_token", on_disk.refresh_token.expose_secret());
        let inputs = refresh_inputs(&emu);
        assert!(
            !is_stale(&disk_fp, &inputs, acked_tokens),
            "round {round}: a refresh token was lost: the disk holds an older token than the \
             last acknowledged refresh ({acked_tokens} acknowledged, {} refreshes)",
            inputs.len()
        );
        expected_first_input = Some(disk_fp);

        // Pairing state: every acknowledged attempt is counted, and an acknowledged lockout is
        // on disk; the state the agent will load from it is at least as strict.
        let file: PairingFile = match std::fs::read(state.join(PAIRING_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("round {round}: pairing.json does not parse: {e}")),
            Err(e) => panic!("round {round}: pairing.json: {e}"),
        };
        let counted = initial + acked_attempts;
        assert!(
            file.failures >= counted.min(MAX_FAILURES),
            "round {round}: attempts lost: {} on disk, {initial} before + {acked_attempts} \
             acknowledged",
            file.failures
        );
        assert!(
            file.failures <= counted + 1,
            "round {round}: more attempts on disk ({}) than made ({counted} + 1 in flight)",
            file.failures
        );
        let unanswered = others.lock().unwrap().clone();
        if std::env::var_os("AVS_KILL_AGENT_LOG").is_some() {
            eprintln!("round {round}: unanswered attempts: {unanswered:?}");
        }
        totals.unanswered_attempts += unanswered.len() as u64;
        if saw_lockout {
            assert!(
                file.locked_for_secs.is_some(),
                "round {round}: the lockout was answered but is not on disk"
            );
        }
        if file.locked_for_secs.is_some() || file.failures >= MAX_FAILURES {
            totals.lockouts_on_disk += 1;
            // What the agent will load: locked out.
            let copy = tempfile::tempdir().unwrap();
            std::fs::copy(state.join(PAIRING_FILE), copy.path().join(PAIRING_FILE)).unwrap();
            let loaded = Pairing::load(copy.path(), PairingConfig::default()).unwrap();
            assert!(
                matches!(loaded.window(), PairingWindow::LockedOut { .. }),
                "round {round}: a full counter loads as {:?}",
                loaded.window()
            );
        }
    }
    totals
}

fn report(totals: &KillTotals, elapsed: Duration) {
    println!(
        "AGENT_KILLS kills={} corrupt=0 lost_refresh_tokens=0 lost_attempts=0 \
         tokens_acknowledged={} attempts_acknowledged={} lockouts_acknowledged={} \
         lockouts_on_disk={} kills_mid_write={} unanswered_attempts={} elapsed_s={:.1}",
        totals.kills,
        totals.tokens_acknowledged,
        totals.attempts_acknowledged,
        totals.lockouts_acknowledged,
        totals.lockouts_on_disk,
        totals.temp_files_left,
        totals.unanswered_attempts,
        elapsed.as_secs_f64()
    );
}

/// CI: 20 kills of the real agent process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_while_writing_loses_nothing() {
    let n: u64 = std::env::var("AVS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = rand::random();
    println!("seed {seed}");
    let t0 = Instant::now();
    let totals = kill_agent_rounds(n, seed).await;
    report(&totals, t0.elapsed());
    // Not vacuous: the kills landed while both files were being rewritten.
    assert!(totals.tokens_acknowledged > 0, "{totals:?}");
    assert!(totals.attempts_acknowledged > 0, "{totals:?}");
}

/// The 200-kill run for docs/benchmarks.md:
/// `cargo test --release -p device-agent --test store_kill -- --ignored agent_killed_200_times --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "200 kills (~2 min); run by hand for docs/benchmarks.md"]
async fn agent_killed_200_times() {
    let seed = std::env::var("AVS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed}");
    let t0 = Instant::now();
    let totals = kill_agent_rounds(200, seed).await;
    report(&totals, t0.elapsed());
}
