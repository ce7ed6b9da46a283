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
    #[error("{program}: {}", kind_words(*.kind))]
    Spawn {
        /// The program the template names.
        program: String,
        /// What the OS said.
        kind: std::io::ErrorKind,
    },
}

#[cfg(unix)]
fn signal_of(s: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(s)
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

fn kind_words(kind: std::io::ErrorKind) -> String {
    match kind {
        std::io::ErrorKind::NotFound => "not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        other => other.to_string(),
    }
}

/// A started browser command.
#[derive(Debug)]
pub struct BrowserProcess {
    child: Option<Child>,
    program: String,
    /// Its stderr, read while waiting (kept here so a cancelled wait loses nothing).
    stderr: Option<tokio::process::ChildStderr>,
    stderr_text: Vec<u8>,
}

/// How a browser command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserFailure {
    /// The program (first word of the command).
    pub program: String,
    /// "exit 1", "killed by signal 9", or the wait's error.
    pub how: String,
    /// Its last lines of stderr, joined with " / " (may be empty).
    pub said: String,
}

impl BrowserFailure {
    /// "false: exit 1" (with what it said on stderr, if anything).
    pub fn short(&self) -> String {
        format!("{}: {}{}", self.program, self.how, suffix(&self.said))
    }
}

impl std::fmt::Display for BrowserFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the browser command `{}` failed ({}){}",
            self.program,
            self.how,
            suffix(&self.said)
        )
    }
}

impl BrowserProcess {
    /// Resolves when the browser command exits with a failure; never resolves for a success
    /// or when there is no process to watch. Returns a short description.
    pub async fn failed(&mut self) -> String {
        self.failure().await.to_string()
    }

    /// [`BrowserProcess::failed`], as a value. Cancel-safe: stderr read so far is kept.
    pub async fn failure(&mut self) -> BrowserFailure {
        match self.exit().await {
            Err(failure) => failure,
            Ok(()) => std::future::pending().await,
        }
    }

    /// Resolves when the browser command exits: `Ok` for a success (an opener such as
    /// `xdg-open` that handed the URL to a running browser), `Err` for a failure. Never
    /// resolves when there is no process (any more) to watch. Cancel-safe.
    pub async fn exit(&mut self) -> Result<(), BrowserFailure> {
        let Some(child) = self.child.as_mut() else {
            return std::future::pending().await;
        };
        let stderr = &mut self.stderr;
        let buf = &mut self.stderr_text;
        let read = async {
            if let Some(err) = stderr.as_mut() {
                let mut chunk = [0u8; 4096];
                while buf.len() < 64 * 1024 {
                    match err.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    }
                }
            }
        };
        let (status, ()) = tokio::join!(child.wait(), read);
        self.child = None;
        self.stderr = None;
        let text = String::from_utf8_lossy(&self.stderr_text);
        let mut last: Vec<&str> = text.lines().rev().take(3).collect();
        last.reverse();
        let said = last.join(" / ");
        let how = match status {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => match (s.code(), signal_of(&s)) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => s.to_string(),
            },
            Err(e) => format!("cannot wait for it: {e}"),
        };
        Err(BrowserFailure {
            program: self.program.clone(),
            how,
            said,
        })
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
    let mut child = child;
    let stderr = child.stderr.take();
    Ok(BrowserProcess {
        child: Some(child),
        program: program.clone(),
        stderr,
        stderr_text: Vec::new(),
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
