//! Opening the user's real browser on the authorize URL.
//!
//! LWA forbids embedded web views for the login (the user must see Amazon's own page in a
//! browser they trust), so the companion hands the URL to the system: the `BROWSER` environment
//! variable if set (a `:`-separated list of commands, `%s` standing for the URL, as understood
//! by `xdg-open`, Python's `webbrowser` and others), else `xdg-open` / `open` / `start`.
//! Tests and the demo set `BROWSER` to a scripted user that signs in on the emulator's real
//! pages.
//!
//! The browser is spawned, not awaited: `xdg-open` returns at once, a scripted browser runs
//! until it has followed the redirect. If it exits with a failure status the login learns about
//! it through [`BrowserProcess::failed`] instead of waiting for a redirect that will never come.

use std::process::Stdio;

use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};
use url::Url;

/// How to show the login page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Browser {
    /// `$BROWSER`, else the platform's opener.
    #[default]
    System,
    /// This command line (shell words; `%s` = the URL, else the URL is appended).
    Command(String),
    /// Don't open anything: the app shows the URL and the user opens it.
    Manual,
}

/// A failure to launch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrowserError {
    /// Nothing could be started; why the last candidate failed.
    #[error("could not open a browser ({0}); open the login URL yourself")]
    Launch(#[source] LaunchError),
}

/// Why one browser command could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// `$BROWSER` (or the configured command) named nothing to try.
    #[error("no browser command")]
    NoCommand,
    /// The template is not valid shell words (an unterminated quote).
    #[error("{template:?}: {source}")]
    Unparsable {
        /// The command template as configured.
        template: String,
        /// What shell-words found.
        source: shell_words::ParseError,
    },
    /// The template has no words.
    #[error("empty browser command")]
    Empty,
    /// The program could not be started (not installed, not executable).
    #[error("{program}: {kind}")]
    Spawn {
        /// The program the template names.
        program: String,
        /// What the OS said.
        kind: std::io::ErrorKind,
    },
}

/// A started browser command.
#[derive(Debug)]
pub struct BrowserProcess {
    child: Option<Child>,
    program: String,
}

impl BrowserProcess {
    /// Resolves when the browser command exits with a failure; never resolves for a success
    /// or when there is no process to watch. Returns a short description.
    pub async fn failed(&mut self) -> String {
        let Some(child) = self.child.as_mut() else {
            return std::future::pending().await;
        };
        let mut stderr = child.stderr.take();
        let read = async {
            let mut buf = Vec::new();
            if let Some(err) = stderr.as_mut() {
                let _ = err.take(64 * 1024).read_to_end(&mut buf).await;
            }
            buf
        };
        let (status, buf) = tokio::join!(child.wait(), read);
        let text = String::from_utf8_lossy(&buf);
        let mut last: Vec<&str> = text.lines().rev().take(3).collect();
        last.reverse();
        let tail = last.join(" / ");
        self.child = None;
        match status {
            Ok(s) if s.success() => std::future::pending().await,
            Ok(s) => format!(
                "the browser command `{}` failed ({s}){}",
                self.program,
                suffix(&tail)
            ),
            Err(e) => format!("the browser command `{}` failed: {e}", self.program),
        }
    }
}

impl BrowserProcess {
    /// Gives the browser command up to `grace` to exit by itself (a scripted browser finishing
    /// its last page), then drops it (which kills it if it is still running).
    pub async fn finish(mut self, grace: std::time::Duration) {
        if let Some(child) = self.child.as_mut() {
            let _ = tokio::time::timeout(grace, child.wait()).await;
        }
    }
}

fn suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}

/// Opens `url` the way `browser` says. `Ok(None)` for [`Browser::Manual`].
pub fn open(url: &Url, browser: &Browser) -> Result<Option<BrowserProcess>, BrowserError> {
    let candidates: Vec<String> = match browser {
        Browser::Manual => return Ok(None),
        Browser::Command(c) => vec![c.clone()],
        Browser::System => match std::env::var("BROWSER") {
            Ok(v) if !v.trim().is_empty() => v.split(':').map(str::to_owned).collect(),
            _ => platform_openers(),
        },
    };
    let mut last = LaunchError::NoCommand;
    for candidate in candidates.iter().filter(|c| !c.trim().is_empty()) {
        match spawn(candidate, url) {
            Ok(p) => return Ok(Some(p)),
            Err(e) => last = e,
        }
    }
    Err(BrowserError::Launch(last))
}

fn platform_openers() -> Vec<String> {
    if cfg!(target_os = "macos") {
        vec!["open".into()]
    } else if cfg!(target_os = "windows") {
        vec!["rundll32 url.dll,FileProtocolHandler".into()]
    } else {
        vec!["xdg-open".into()]
    }
}

/// The argv for a command template and a URL.
pub fn command_line(template: &str, url: &Url) -> Result<Vec<String>, LaunchError> {
    let words = shell_words::split(template).map_err(|source| LaunchError::Unparsable {
        template: template.to_owned(),
        source,
    })?;
    if words.is_empty() {
        return Err(LaunchError::Empty);
    }
    let mut substituted = false;
    let mut argv: Vec<String> = words
        .into_iter()
        .map(|w| {
            if w.contains("%s") {
                substituted = true;
                w.replace("%s", url.as_str())
            } else {
                w
            }
        })
        .collect();
    if !substituted {
        argv.push(url.as_str().to_owned());
    }
    Ok(argv)
}

fn spawn(template: &str, url: &Url) -> Result<BrowserProcess, LaunchError> {
    let argv = command_line(template, url)?;
    let (program, args) = argv.split_first().ok_or(LaunchError::Empty)?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| LaunchError::Spawn {
            program: program.clone(),
            kind: e.kind(),
        })?;
    Ok(BrowserProcess {
        child: Some(child),
        program: program.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_command_lines() {
        let url: Url = "https://127.0.0.1:1/ap/oa?a=b&c=d".parse().unwrap();
        assert_eq!(
            command_line("firefox --new-tab", &url).unwrap(),
            vec!["firefox", "--new-tab", url.as_str()]
        );
        assert_eq!(
            command_line("'/opt/my browser/b' --url=%s -x", &url).unwrap(),
            vec!["/opt/my browser/b", &format!("--url={url}"), "-x"]
        );
        assert_eq!(command_line("  ", &url), Err(LaunchError::Empty));
        assert!(matches!(
            command_line("unterminated 'quote", &url),
            Err(LaunchError::Unparsable { .. })
        ));
    }

    #[tokio::test]
    async fn a_failing_browser_is_reported() {
        let url: Url = "http://127.0.0.1:1/".parse().unwrap();
        let mut p = open(
            &url,
            &Browser::Command("sh -c 'echo nope >&2; exit 3' x".into()),
        )
        .unwrap()
        .unwrap();
        let why = tokio::time::timeout(std::time::Duration::from_secs(5), p.failed())
            .await
            .unwrap();
        assert!(why.contains("nope"), "{why}");
        assert!(open(&url, &Browser::Command("/nonexistent/browser".into())).is_err());
        assert!(open(&url, &Browser::Manual).unwrap().is_none());
    }
}
