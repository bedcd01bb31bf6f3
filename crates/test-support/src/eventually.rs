//! Waiting for a state that nothing signals (a count on a metrics page, a row in a
//! database, a line on a child's stderr): a check polled until it holds, or until the
//! test's patience runs out and it fails with what the state was instead. Where a
//! signal exists (a log line through [`crate::Vigil::wait_for_log`], a readiness
//! probe), wait on that instead.

use std::panic::Location;
use std::time::{Duration, Instant};

/// How often a check runs: often enough that a test waits little past the moment its
/// state arrives, seldom enough to leave the machine to the code under test.
const EVERY: Duration = Duration::from_millis(20);

/// Runs `check` every 20 ms until it returns `Ok`, and returns that value. Once
/// `within` has passed, fails the test with the last `Err`: what the state was instead,
/// and where the test waited (a plain function returning the future, so that
/// `#[track_caller]` can name the test's line: an `async fn` cannot).
#[track_caller]
pub fn eventually<T>(
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> impl Future<Output = T> {
    let caller = Location::caller();
    async move {
        let deadline = Instant::now() + within;
        loop {
            match check().await {
                Ok(value) => return value,
                Err(instead) => assert!(
                    Instant::now() < deadline,
                    "not so within {within:?} (waiting at {caller}): {instead}"
                ),
            }
            tokio::time::sleep(EVERY).await;
        }
    }
}

/// [`eventually`] for a condition with nothing to return: fails with `never` once
/// `within` has passed without it.
#[track_caller]
pub fn until(
    within: Duration,
    never: &str,
    reached: impl Fn() -> bool,
) -> impl Future<Output = ()> {
    eventually(within, async move || {
        if reached() {
            Ok(())
        } else {
            Err(never.to_string())
        }
    })
}

/// [`eventually`] for a test or helper without a runtime: blocks the thread between
/// checks.
#[track_caller]
pub fn eventually_blocking<T>(within: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let caller = Location::caller();
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(value) => return value,
            Err(instead) => assert!(
                Instant::now() < deadline,
                "not so within {within:?} (waiting at {caller}): {instead}"
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

    /// The panic message of `failed`.
    fn message(failed: Box<dyn std::any::Any + Send>) -> String {
        *failed.downcast::<String>().expect("a formatted message")
    }

    #[test]
    fn fails_with_the_last_state_and_the_tests_line_once_patience_runs_out() {
        let line = line!() + 2;
        let failed = std::panic::catch_unwind(|| {
            eventually_blocking(Duration::from_millis(50), || Err::<(), _>("0".into()))
        });
        let message = message(failed.unwrap_err());
        assert!(message.starts_with("not so within 50ms"), "{message}");
        assert!(
            message.contains(&format!("eventually.rs:{line}:")),
            "{message}"
        );
        assert!(message.ends_with(": 0"), "{message}");
    }

    #[test]
    fn the_async_form_names_the_tests_line_too() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let line = line!() + 2;
        let failed = std::panic::catch_unwind(|| {
            runtime.block_on(until(Duration::from_millis(50), "never", || false))
        });
        let message = message(failed.unwrap_err());
        assert!(
            message.contains(&format!("eventually.rs:{line}:")),
            "{message}"
        );
        assert!(message.ends_with(": never"), "{message}");
    }
}
