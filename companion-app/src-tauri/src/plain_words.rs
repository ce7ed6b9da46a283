//! The core's failure sentences in people's words for the window.
//!
//! The core writes its errors for the `avs-companion` terminal: they name CLI commands ("run pair
//! again", "`avs-companion config --client-id ID`", "`avs-device-agent pair` on it") and quote
//! what LWA said. In the window those are developer material: the result screen shows the
//! sentence with them taken out (the window's own button is the "try again"), and the exact
//! sentence goes under the screen's Advanced disclosure ([`crate::ipc::PairingErrorView::detail`]).
//!
//! Only these shapes are rewritten: a parenthesised aside that quotes a command, an "or run
//! `…` on it" alternative, "run pair (again)", a trailing "LWA said: …", and the backticks of any
//! other quoted word. Everything else is the core's wording, unchanged.

/// `core` without CLI commands and LWA quotes (see the module docs).
pub fn for_people(core: &str) -> String {
    let mut s = core.to_owned();
    // "…. LWA said: invalid_client" / "…; LWA said: …": the tail is for developers.
    for cut in [". LWA said:", "; LWA said:", " LWA said:"] {
        if let Some(at) = s.find(cut) {
            s.truncate(at);
        }
    }
    s = drop_command_asides(&s);
    for (from, to) in [("run pair again", "try again"), ("run pair", "try again")] {
        s = s.replace(from, to);
    }
    s = drop_run_alternatives(&s);
    s = s.replace('`', "");
    // Tidy what the cuts left.
    while s.contains("  ") {
        s = s.replace("  ", " ");
    }
    for (from, to) in [(" ;", ";"), (" ,", ","), (" .", "."), (" :", ":")] {
        s = s.replace(from, to);
    }
    s.trim()
        .trim_end_matches([';', ',', ':'])
        .trim_end()
        .to_owned()
}

/// Removes every "( … )" whose inside quotes something in backticks (a command), with the
/// space before it.
fn drop_command_asides(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('(') {
        let Some(len) = rest[open..].find(')') else {
            break;
        };
        let inside = &rest[open + 1..open + len];
        if inside.contains('`') {
            out.push_str(rest[..open].trim_end());
            rest = &rest[open + len + 1..];
        } else {
            out.push_str(&rest[..=open + len]);
            rest = &rest[open + len + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Removes " or run `…` on it" / " or run `…`" (an alternative for whoever has a shell on the
/// speaker), keeping what comes after.
fn drop_run_alternatives(s: &str) -> String {
    let mut out = s.to_owned();
    while let Some(at) = out.find(" or run `") {
        let after = &out[at + " or run `".len()..];
        let Some(close) = after.find('`') else {
            break;
        };
        let mut end = at + " or run `".len() + close + 1;
        if out[end..].starts_with(" on it") {
            end += " on it".len();
        }
        out.replace_range(at..end, "");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::for_people;

    /// Sentences the core really produces (companion-app/src: handover.rs, login/mod.rs,
    /// link.rs, commands/window.rs), with example values.
    const CORE: &[&str] = &[
        "Amazon's login service had an error; wait a minute and run pair again",
        "the speaker no longer knows this pairing session (it restarted, or another app started pairing it); run pair again",
        "the speaker's pairing window closed before the code arrived; reopen pairing on the speaker (its pairing button, or `avs-device-agent pair` on it) and run pair again",
        "the sign-in response does not belong to this login (its `state` does not match): ignored it for safety. Close other Amazon sign-in tabs and run pair again",
        "the sign-in response has no `state` parameter, so it can't be matched to this login: run pair again (if you pasted a URL, paste the whole address you landed on)",
        "the sign-in response has no authorization code: run pair again",
        "Login with Amazon does not know the client id amzn1.application-oa2-client.x: check the client id setting (`avs-companion config --client-id ID`); copy it from your security profile in the Amazon developer console (its 'Other devices and platforms' or Android/iOS settings). LWA said: invalid_client",
        "Login with Amazon does not accept the redirect URI http://127.0.0.1:9/cb for this client id: add it to the security profile's Allowed Return URLs in the Amazon developer console, or set one listed there (`avs-companion config --redirect-uri URI`). LWA said: redirect_uri mismatch",
        "Login with Amazon refused the sign-in request (HTTP 400): check the client id and the redirect URI settings (`avs-companion config`). LWA said: bad request",
        "the pasted address is not this sign-in's; gave up after 3 pasted addresses: run pair again",
        "the speaker stopped answering (restarted?); your sign-in was not used — run pair again",
        "open the pairing window on the speaker: press its pairing button or run `avs-device-agent pair` on it",
    ];

    #[test]
    fn no_command_or_lwa_quote_is_left() {
        for core in CORE {
            let plain = for_people(core);
            for bad in [
                "`",
                "avs-device-agent",
                "avs-companion",
                "run pair",
                "LWA said",
            ] {
                assert!(
                    !plain.contains(bad),
                    "{bad:?} left in {plain:?} (from {core:?})"
                );
            }
            assert!(!plain.contains("  ") && !plain.contains("()"), "{plain:?}");
            assert!(plain.len() > 20, "too little left of {core:?}: {plain:?}");
        }
    }

    #[test]
    fn the_rewrites_read_as_sentences() {
        for (core, plain) in [
            (
                CORE[2],
                "the speaker's pairing window closed before the code arrived; reopen pairing on the speaker and try again",
            ),
            (
                CORE[6],
                "Login with Amazon does not know the client id amzn1.application-oa2-client.x: check the client id setting; copy it from your security profile in the Amazon developer console (its 'Other devices and platforms' or Android/iOS settings)",
            ),
            (
                CORE[11],
                "open the pairing window on the speaker: press its pairing button",
            ),
            (
                CORE[3],
                "the sign-in response does not belong to this login: ignored it for safety. Close other Amazon sign-in tabs and try again",
            ),
        ] {
            assert_eq!(for_people(core), plain, "from {core:?}");
        }
        // Words without commands stay as they are.
        let plain = "Wrong setup code: 19 tries left before pairing locks for 1 minute";
        assert_eq!(for_people(plain), plain);
    }
}
