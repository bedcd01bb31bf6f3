//! Waiting for a state that nothing signals (a count on a metrics page, a row in a
//! database, a line on a child's stderr): a check polled until it holds, or until the
//! test's patience runs out and it fails with what the state was instead. Where a
//! signal exists (a log line through [`crate::Vigil::wait_for_log`], a readiness
//! probe), wait on that instead.

use std::time::{Duration, Instant};

/// How often a check runs: often enough that a test waits little past the moment its
/// state arrives, seldom enough to leave the machine to the code under test.
const EVERY: Duration = Duration::from_millis(20);

/// Runs `check` every 20 ms until it returns `Ok`, and returns that value. Once
/// `within` has passed, fails the test with the last `Err`: what the state was instead.
pub async fn eventually<T>(
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(instead) => assert!(
                Instant::now() < deadline,
                "not so within {within:?}: {instead}"
            ),
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// [`eventually`] for a condition with nothing to return: fails with `never` once
/// `within` has passed without it.
pub async fn until(within: Duration, never: &str, reached: impl Fn() -> bool) {
    eventually(within, async || {
        if reached() {
            Ok(())
        } else {
            Err(never.to_string())
        }
    })
    .await
}

/// [`eventually`] for a test or helper without a runtime: blocks the thread between
/// checks.
pub fn eventually_blocking<T>(within: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(value) => return value,
            Err(instead) => assert!(
                Instant::now() < deadline,
                "not so within {within:?}: {instead}"
            ),
        }
        std::thread::sleep(EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_once_the_check_holds() {
        let mut calls = 0;
        let got = eventually(Duration::from_secs(5), async || {
            calls += 1;
            if calls == 3 {
                Ok(calls)
            } else {
                Err(format!("{calls} calls"))
            }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "not so within 50ms: still 0")]
    fn fails_with_the_last_state_once_patience_runs_out() {
        eventually_blocking(Duration::from_millis(50), || {
            Err::<(), _>("still 0".to_string())
        });
    }
}
