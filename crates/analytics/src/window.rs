//! The `?window=` of an analytics report: a duration such as `30s`, `5m` or `1h`,
//! between one slot and the hour the ring keeps.

use std::time::Duration;

/// Width of one slot of the ring.
pub const SLOT: Duration = Duration::from_secs(10);
/// The longest window: what the ring keeps.
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// The window when none is asked for.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("window {0:?} is not a duration like 30s, 5m or 1h")]
    Unparsable(String),
    #[error("window must be between 10s and 1h")]
    OutOfRange,
}

/// Parses a window (`None`: the 5-minute default), rounded up to whole slots: the
/// report covers whole slots, and its `window_seconds` says which span it covers.
pub fn parse_window(text: Option<&str>) -> Result<Duration, WindowError> {
    let Some(text) = text else {
        return Ok(DEFAULT_WINDOW);
    };
    let window = humantime::parse_duration(text.trim())
        .map_err(|_| WindowError::Unparsable(text.chars().take(40).collect()))?;
    if window < SLOT || window > MAX_WINDOW {
        return Err(WindowError::OutOfRange);
    }
    // At most 360 slots: the count fits a u32.
    let slots = window.as_nanos().div_ceil(SLOT.as_nanos());
    Ok(SLOT * slots as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_in_range_only() {
        assert_eq!(parse_window(None), Ok(DEFAULT_WINDOW));
        assert_eq!(parse_window(Some("30s")), Ok(Duration::from_secs(30)));
        assert_eq!(parse_window(Some("1h")), Ok(MAX_WINDOW));
        assert_eq!(parse_window(Some("5m")), Ok(Duration::from_secs(300)));
        // Rounded up to whole 10-second slots.
        assert_eq!(parse_window(Some("61s")), Ok(Duration::from_secs(70)));
        assert_eq!(parse_window(Some("10s 1ms")), Ok(Duration::from_secs(20)));
        assert_eq!(parse_window(Some("59m 59s")), Ok(MAX_WINDOW));
        assert_eq!(parse_window(Some("2h")), Err(WindowError::OutOfRange));
        assert_eq!(parse_window(Some("1s")), Err(WindowError::OutOfRange));
        assert!(matches!(
            parse_window(Some("soon")),
            Err(WindowError::Unparsable(_))
        ));
        assert!(matches!(
            parse_window(Some("-5m")),
            Err(WindowError::Unparsable(_))
        ));
    }
}
