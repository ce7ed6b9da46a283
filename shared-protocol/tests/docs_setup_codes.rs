//! Every manual setup code (`NNNN-NNNN-C`, with its Verhoeff check digit) written in the docs,
//! the README, the app's text and the module docs parses as the text claims: valid, unless the
//! line says it is a typo, wrong or invalid (then it must be refused). Issue 15.11: the README and
//! the app's hint showed `1234-5678-9`, which the companion refuses.

use std::path::{Path, PathBuf};

use shared_protocol::setup_code::SetupCode;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The files people read codes from.
fn sources() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![
        root.join("README.md"),
        root.join("shared-protocol/src/setup_code.rs"),
    ];
    let mut dirs = vec![root.join("docs"), root.join("companion-app/ui/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("md" | "ts" | "html")
            ) {
                files.push(p);
            }
        }
    }
    files.push(root.join("companion-app/ui/index.html"));
    files
}

/// `NNNN-NNNN-C` or `NNNN NNNN C` not inside a longer run of digits.
fn manual_codes(line: &str) -> Vec<String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    for start in 0..b.len() {
        if start > 0 && digit(start - 1) {
            continue;
        }
        let end = start + 11;
        if end > b.len() {
            break;
        }
        let sep = b[start + 4];
        let shape = (0..4).all(|k| digit(start + k))
            && (sep == b'-' || sep == b' ')
            && (5..9).all(|k| digit(start + k))
            && b[start + 9] == sep
            && digit(start + 10)
            && !digit(end);
        if shape {
            out.push(line[start..end].to_owned());
        }
    }
    out
}

#[test]
fn every_setup_code_in_the_docs_parses_as_they_claim() {
    let mut seen = 0;
    let mut wrong = Vec::new();
    for file in sources() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for code in manual_codes(line) {
                seen += 1;
                let lower = line.to_lowercase();
                let claimed_bad = ["invalid", "not valid", "refused", "is wrong"]
                    .iter()
                    .any(|w| lower.contains(w));
                let parses = SetupCode::parse(&code).is_ok();
                if parses == claimed_bad {
                    wrong.push(format!(
                        "{}:{}: {code} {}",
                        file.display(),
                        n + 1,
                        if parses {
                            "parses, but the line calls it bad"
                        } else {
                            "is refused by SetupCode::parse"
                        }
                    ));
                }
            }
        }
    }
    assert!(seen >= 4, "the scan found the documented codes ({seen})");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_scan_finds_codes_in_both_spellings() {
    assert_eq!(
        manual_codes("a 1234-5670-9 b 4071 0839 1 c 11234-5670-9 d 1234-5670-91"),
        vec!["1234-5670-9", "4071 0839 1"]
    );
}
