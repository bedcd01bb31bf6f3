//! File names: the active `vigil.log`, and rotated `vigil.<UTC time>[.<n>].log` (plus
//! `.gz` once compressed). The time is when the file was rotated, to the millisecond,
//! so names sort as the files were made; `n` tells apart the rare files rotated in the
//! same millisecond. Retention deletes in (time, n) order.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const ACTIVE: &str = "vigil.log";

/// Held locked while a process writes the directory. Two processes appending to one
/// `vigil.log` would rotate (and compress, and delete) each other's file from under the
/// other's open handle, losing its lines. Hidden, so `vigil logs dir/*` passes it by.
pub const LOCK: &str = ".vigil.log.lock";
const PREFIX: &str = "vigil.";

/// The time part of a rotated name: `2026-12-01T21-05-47.123Z` (no colons: portable).
pub fn stamp(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A free name in `dir` for a file rotated at `t`.
pub fn rotated_path(dir: &Path, t: SystemTime) -> PathBuf {
    let stamp = stamp(t);
    (0u32..)
        .map(|n| {
            let name = if n == 0 {
                format!("{PREFIX}{stamp}.log")
            } else {
                format!("{PREFIX}{stamp}.{n}.log")
            };
            dir.join(name)
        })
        .find(|p| !p.exists() && !gz_of(p).exists())
        .expect("some suffix is free")
}

/// `x.log` → `x.log.gz`.
pub fn gz_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}

/// A rotated file's sort key (stamp, n) and whether it is compressed; `None` for any
/// other file (the active one, temporaries, foreign files).
pub fn parse_rotated(name: &str) -> Option<((String, u32), bool)> {
    let (rest, gz) = match name.strip_suffix(".gz") {
        Some(r) => (r, true),
        None => (name, false),
    };
    let rest = rest.strip_prefix(PREFIX)?.strip_suffix(".log")?;
    // YYYY-MM-DDTHH-MM-SS.mmmZ, then an optional `.n`.
    let (stamp, n) = match rest.split_at_checked(24)? {
        (stamp, "") => (stamp, 0),
        (stamp, n) => (stamp, n.strip_prefix('.')?.parse().ok()?),
    };
    let ok = stamp.ends_with('Z')
        && stamp.as_bytes()[19] == b'.'
        && stamp
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'T' | b'Z' | b'.'));
    ok.then(|| ((stamp.to_owned(), n), gz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rotated_names_parse_and_sort_by_time_then_suffix() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_158_000_042);
        assert_eq!(stamp(t), "2026-12-01T20-46-40.042Z");
        assert_eq!(
            parse_rotated("vigil.2026-12-01T20-46-40.042Z.log"),
            Some((("2026-12-01T20-46-40.042Z".into(), 0), false))
        );
        assert_eq!(
            parse_rotated("vigil.2026-12-01T20-46-40.042Z.2.log.gz"),
            Some((("2026-12-01T20-46-40.042Z".into(), 2), true))
        );
        for other in [
            "vigil.log",
            "vigil.2026.log",
            "notes.txt",
            "vigil.2026-12-01T20-46-40.042Z.log.gz.tmp",
            "vigil.2026-12-01T20-46-40.042Zx.log",
        ] {
            assert_eq!(parse_rotated(other), None, "{other}");
        }
    }
}
