//! The fuzz targets' checks on stable, on every CI run: each target's committed seeds
//! (`fuzz/seeds/<target>/`), then a fixed number of deterministic mutants of them, go through
//! the same `run(data)` the cargo-fuzz target calls (`fuzz/checks/<target>.rs`, included here
//! as modules). The long runs (>= 5 M executions each, libFuzzer + ASan, nightly flags) stay by
//! hand (docs/fuzzing.md); this catches a parser that panics or breaks its invariants on the
//! known inputs and on the cheap mutations around them (flips, cuts, inserted bytes, splices),
//! without cargo-fuzz, a sanitizer build or nightly in CI.
//!
//! `AVS_FUZZ_MUTANTS` sets the mutants per seed (default [`MUTANTS`]). A failing input is printed
//! in hex: save it under `fuzz/seeds/<target>/` once the bug is fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

#[path = "../../fuzz/checks/gatt_transport.rs"]
mod gatt_transport;
#[path = "../../fuzz/checks/link_input.rs"]
mod link_input;
#[path = "../../fuzz/checks/local_api_line.rs"]
mod local_api_line;
#[path = "../../fuzz/checks/lwa_response.rs"]
mod lwa_response;
#[path = "../../fuzz/checks/mdns_answer.rs"]
mod mdns_answer;
#[path = "../../fuzz/checks/mdns_txt.rs"]
mod mdns_txt;
#[path = "../../fuzz/checks/setup_code_qr.rs"]
mod setup_code_qr;

/// Mutants per seed by default (~190 k executions in all, about a second in a debug build).
const MUTANTS: usize = 2000;

/// A target's check: panics on a broken invariant.
type Check = fn(&[u8]);

/// Every target with its check. `link_input` has no seeds of its own: it reads every target's
/// (all of them are bytes a peer controls).
const TARGETS: [(&str, Check); 7] = [
    ("gatt_transport", gatt_transport::run),
    ("link_input", link_input::run),
    ("local_api_line", local_api_line::run),
    ("lwa_response", lwa_response::run),
    ("mdns_answer", mdns_answer::run),
    ("mdns_txt", mdns_txt::run),
    ("setup_code_qr", setup_code_qr::run),
];

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds")
}

/// The seeds of `target` (all targets' for one without a directory), sorted by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seeds_dir().join(target);
    let dirs: Vec<PathBuf> = if dir.is_dir() {
        vec![dir]
    } else {
        let mut all: Vec<PathBuf> = std::fs::read_dir(seeds_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        all.sort();
        all
    };
    let mut out = Vec::new();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            out.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    out
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes parsers care about.
const INTERESTING: [u8; 12] = [
    0x00, 0x01, 0x7F, 0x80, 0xFF, 0xC0, b'"', b'{', b'}', b'\n', b'=', b'.',
];

/// One to four random edits of `seed`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            4 => v.truncate(at),
            5 if at < v.len() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                let chunk = v[at..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, chunk);
            }
            6 => {
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                if let Some(i) = (!v.is_empty()).then(|| rng.below(v.len())) {
                    v[i] = INTERESTING[rng.below(INTERESTING.len())];
                }
            }
        }
    }
    v
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `check` on `data`; a panic becomes a failure that names the target and the input.
fn check_one(target: &str, what: &str, check: Check, data: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| check(data))).map_err(|_| {
        format!(
            "{target}: {what} failed (input {} bytes, hex {})",
            data.len(),
            hex(data)
        )
    })
}

/// A target added under `fuzz/checks/` must be added to [`TARGETS`] too, or CI would never
/// replay it.
#[test]
fn every_check_under_fuzz_checks_is_replayed() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/checks");
    let mut checks: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    checks.sort();
    let replayed: Vec<String> = TARGETS.iter().map(|(t, _)| (*t).to_owned()).collect();
    assert_eq!(checks, replayed, "fuzz/checks/ and TARGETS differ");
}

#[test]
fn every_fuzz_target_holds_on_its_seeds_and_their_mutants() {
    let mutants: usize = std::env::var("AVS_FUZZ_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTANTS);
    let mut failures = Vec::new();
    let mut executions = 0usize;
    for (target, check) in TARGETS {
        let seeds = seeds(target);
        assert!(!seeds.is_empty(), "{target}: no seeds under fuzz/seeds");
        // Fixed per target, so a failure reproduces with the same mutant.
        let mut rng =
            Rng(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64 ^ (target.as_bytes()[0] as u64) << 32);
        for (i, (name, seed)) in seeds.iter().enumerate() {
            executions += 1;
            if let Err(e) = check_one(target, &format!("seed {name}"), check, seed) {
                failures.push(e);
            }
            let other = &seeds[(i + 1) % seeds.len()].1;
            for m in 0..mutants {
                let input = mutate(&mut rng, seed, other);
                executions += 1;
                if let Err(e) = check_one(target, &format!("mutant {m} of {name}"), check, &input) {
                    failures.push(e);
                    break;
                }
            }
        }
    }
    eprintln!("fuzz seed replay: {executions} executions");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
