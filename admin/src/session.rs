//! Login tokens and sessions (ADR 0023): a one-time token exchanged for a session cookie,
//! and the CSRF token each session's changes must carry.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use pactum_clock::Stopwatch;

/// The session cookie's name.
pub const COOKIE: &str = "pactum_console";
/// A session ends after this long without a request...
pub const IDLE_MAX: Duration = Duration::from_secs(30 * 60);
/// ...or this long after login, whichever comes first.
pub const LIFETIME_MAX: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions open at once; a login past it ends the oldest.
pub const SESSIONS_MAX: usize = 64;

/// `bytes` random bytes from the operating system, hex.
fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system provides randomness");
    hex::encode(buffer)
}

/// One logged-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    /// Identifies the session in the audit log (not the cookie value).
    pub number: u64,
    pub csrf: String,
    started: Stopwatch,
    seen: Stopwatch,
}

impl Session {
    /// No session: what the audit log names a refused login by.
    pub fn anonymous() -> Self {
        Self {
            number: 0,
            csrf: String::new(),
            started: Stopwatch::start(),
            seen: Stopwatch::start(),
        }
    }

    fn expired(&self) -> bool {
        self.started.elapsed() > LIFETIME_MAX || self.seen.elapsed() > IDLE_MAX
    }
}

/// The current login token and the open sessions.
pub struct Sessions {
    token_file: PathBuf,
    state: Mutex<State>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token and the session ids are secrets: never printed.
        formatter
            .debug_struct("Sessions")
            .field("token_file", &self.token_file)
            .finish_non_exhaustive()
    }
}

struct State {
    token: String,
    sessions: HashMap<String, Session>,
    logins: u64,
}

impl Sessions {
    /// A fresh login token, written to `token_file` (mode 0600) and returned for the
    /// operator to see.
    pub fn new(token_file: PathBuf) -> std::io::Result<(Self, String)> {
        let token = random_hex(16);
        crate::write_file(&token_file, &format!("{token}\n"), 0o600)?;
        let state = State { token: token.clone(), sessions: HashMap::new(), logins: 0 };
        Ok((Self { token_file, state: Mutex::new(state) }, token))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Exchanges the login token for a session: its cookie value and the session. The
    /// token is then replaced (written to the token file again) and returned third, so
    /// that each token opens one session. `None` for a wrong token.
    pub fn login(&self, token: &str) -> Option<(String, Session, String)> {
        let mut state = self.state();
        if !constant_time_equal(token.trim().as_bytes(), state.token.as_bytes()) {
            return None;
        }
        let next = random_hex(16);
        if let Err(error) = crate::write_file(&self.token_file, &format!("{next}\n"), 0o600) {
            tracing::error!(%error, file = %self.token_file.display(), "cannot write the next login token");
        }
        state.token = next.clone();
        state.sessions.retain(|_, session| !session.expired());
        if state.sessions.len() >= SESSIONS_MAX
            && let Some(oldest) = state
                .sessions
                .iter()
                .min_by_key(|(_, session)| session.number)
                .map(|(id, _)| id.clone())
        {
            state.sessions.remove(&oldest);
        }
        state.logins += 1;
        let session = Session {
            number: state.logins,
            csrf: random_hex(32),
            started: Stopwatch::start(),
            seen: Stopwatch::start(),
        };
        let id = random_hex(32);
        state.sessions.insert(id.clone(), session.clone());
        Some((id, session, next))
    }

    /// The session with cookie value `id`, if it is open; it counts as activity.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let mut state = self.state();
        let session = state.sessions.get_mut(id)?;
        if session.expired() {
            state.sessions.remove(id);
            return None;
        }
        session.seen = Stopwatch::start();
        Some(session.clone())
    }

    pub fn logout(&self, id: &str) {
        self.state().sessions.remove(id);
    }
}

/// Compares two secrets in time that depends on their length only.
pub fn constant_time_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_one_session_and_is_replaced() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("login-token");
        let (sessions, token) = Sessions::new(file.clone()).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(sessions.login("wrong").is_none());
        let (id, session, next) = sessions.login(&token).unwrap();
        assert_ne!(next, token);
        assert!(sessions.login(&token).is_none(), "a token is good for one login");
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), next);
        assert_eq!(sessions.touch(&id).unwrap().csrf, session.csrf);
        sessions.logout(&id);
        assert!(sessions.touch(&id).is_none());
    }

    #[test]
    fn cookies_and_secrets_are_read_exactly() {
        assert_eq!(cookie_value("a=1; pactum_console=xyz; b=2", COOKIE), Some("xyz"));
        assert_eq!(cookie_value("pactum_console_x=1", COOKIE), None);
        assert!(constant_time_equal(b"abc", b"abc"));
        assert!(!constant_time_equal(b"abc", b"abd"));
        assert!(!constant_time_equal(b"abc", b"ab"));
    }
}
