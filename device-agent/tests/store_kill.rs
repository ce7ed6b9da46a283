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
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let store = TokenStore::open(std::path::Path::new(&dir)).unwrap();
    for i in 0u64.. {
        store
            .save(&StoredTokens {
                // Long, varying content so a torn write would show.
                refresh_token: RefreshToken::new(format!(
                    "Atzr|{round}-{i}-{}",
                    "x".repeat((i % 900) as usize)
                )),
                client_id: ClientId::new("amzn1.application-oa2-client.kill"),
                user_id: None,
                verified: true,
            })
            .unwrap();
        if i == 0 {
            println!("WRITER_READY");
        }
    }
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
            .args([
                "store_writer_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
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
