//! The listener's settings and their defaults. The idle and body timeouts follow
//! nginx (`keepalive_timeout` 75 s, `client_body_timeout` 60 s); the header timeout is
//! shorter than nginx's 60 s because a request head is a few hundred bytes and vigil's
//! clients are programs on fast links, so a head that takes 10 s is an attack or a
//! broken client.

use std::time::Duration;

/// The longest timeout accepted. Anything longer is a typo, and the bound keeps
/// deadline arithmetic far from `Instant` overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a connection may take at each stage, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    /// A new connection must deliver a complete request head within this. On a
    /// keep-alive connection, a head whose first byte has arrived must be complete
    /// within this of that byte, but is never cut before the idle timeout (counted
    /// from the previous response) has run out: a request that starts just before the
    /// idle deadline gets the full header timeout.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in progress (the previous response has
    /// been produced and nothing of the next request has arrived) is closed after this.
    pub idle_timeout: Duration,
    /// A handler waiting for the next chunk of a request body waits at most this; the
    /// connection is then closed. The same bound applies to a response write the
    /// client does not take (its receive window stays full).
    pub body_timeout: Duration,
    /// Open connections at most. Beyond it, a new connection is accepted and closed at
    /// once, so the backlog cannot fill with clients that will never be served. Keep
    /// it below the process's file descriptor limit, with room for the database, the
    /// spool and log files.
    pub max_connections: usize,
    /// Threads serving connections with `Placement::Threads`, each a single-threaded
    /// runtime (see `threads`).
    /// One a core by default: `std::thread::available_parallelism`, which counts the
    /// CPUs this process may use (its affinity mask and cgroup CPU quota).
    pub threads: usize,
}

/// The most connection threads accepted: more than any machine vigil runs on has
/// cores, few enough that a typo does not start a million threads.
pub const MAX_THREADS: usize = 1024;

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            body_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// A setting that would make the listener close every connection, or none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting} must be between 1 ms and 24 h")]
    Timeout { setting: &'static str },
    #[error("max_connections must be at least 1")]
    NoConnections,
    #[error("http_threads must be between 1 and {MAX_THREADS}")]
    Threads,
}

impl ListenerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, value) in [
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
            ("body_timeout", self.body_timeout),
        ] {
            if value < Duration::from_millis(1) || value > MAX_TIMEOUT {
                return Err(ConfigError::Timeout { setting });
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::NoConnections);
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(ConfigError::Threads);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_setting() {
        assert_eq!(ListenerConfig::default().validate(), Ok(()));
        let zero_header = ListenerConfig {
            header_timeout: Duration::ZERO,
            ..ListenerConfig::default()
        };
        assert_eq!(
            zero_header.validate(),
            Err(ConfigError::Timeout {
                setting: "header_timeout"
            })
        );
        let huge_idle = ListenerConfig {
            idle_timeout: MAX_TIMEOUT + Duration::from_millis(1),
            ..ListenerConfig::default()
        };
        assert!(
            huge_idle
                .validate()
                .unwrap_err()
                .to_string()
                .contains("idle_timeout")
        );
        let none = ListenerConfig {
            max_connections: 0,
            ..ListenerConfig::default()
        };
        assert_eq!(none.validate(), Err(ConfigError::NoConnections));
        for threads in [0, MAX_THREADS + 1] {
            let bad = ListenerConfig {
                threads,
                ..ListenerConfig::default()
            };
            assert_eq!(bad.validate(), Err(ConfigError::Threads));
        }
    }
}
