//! The line filters, checked once from the flags and then applied to every line.

use std::borrow::Cow;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::args::LogsArgs;
use crate::error::LogsError;
use crate::level::Level;
use crate::line::LogLine;

/// A `--status` value: one status or a class such as `5xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    Exact(u16),
    Class(u16),
}

impl StatusMatch {
    pub fn parse(s: &str) -> Result<StatusMatch, LogsError> {
        let s = s.trim();
        let bad = || LogsError::BadStatus {
            value: s.to_owned(),
        };
        let lower = s.to_ascii_lowercase();
        if let Some(class) = lower.strip_suffix("xx") {
            let c: u16 = class.parse().map_err(|_| bad())?;
            if (1..=5).contains(&c) && class.len() == 1 {
                return Ok(StatusMatch::Class(c));
            }
            return Err(bad());
        }
        match s.parse::<u16>() {
            Ok(n) if (100..=999).contains(&n) => Ok(StatusMatch::Exact(n)),
            _ => Err(bad()),
        }
    }

    fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Exact(n) => status == n,
            StatusMatch::Class(c) => status / 100 == c,
        }
    }
}

/// All filters; a line must pass every one that is set.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    level: Option<Level>,
    service: Option<String>,
    request_id: Option<Story>,
    trace_id: Option<String>,
    user: Option<String>,
    route: Option<String>,
    status: Vec<StatusMatch>,
    method: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    min_duration: Option<f64>,
    message: Option<String>,
    wheres: Vec<(String, String)>,
}

/// `--since`: a duration back from `now` (`15m`, `2h`, `1h 30m`) or an RFC 3339 time.
pub fn parse_since(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime, LogsError> {
    let time_error = match OffsetDateTime::parse(value, &Rfc3339) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    // A value that starts like a date was meant as a time: say what is wrong with it
    // as one, not as a duration ("invalid character at 4").
    let bytes = value.as_bytes();
    if bytes.len() >= 5 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-' {
        return Err(LogsError::BadSince {
            value: value.to_owned(),
            reason: time_reason(value, &time_error),
        });
    }
    let d = humantime::parse_duration(value).map_err(|e| LogsError::BadSince {
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    let d = Duration::try_from(d).map_err(|e| LogsError::BadSince {
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    now.checked_sub(d).ok_or_else(|| LogsError::BadSince {
        value: value.to_owned(),
        reason: "too far back".to_owned(),
    })
}

/// Why a time is not RFC 3339, in the words a person needs: most often the zone is
/// missing (`2026-12-05T10:47:56`), which the parser reports as a missing component.
fn time_reason(value: &str, error: &time::error::Parse) -> String {
    let tail = value.rsplit_once('T').map_or("", |(_, t)| t);
    let zoned = tail.ends_with(['Z', 'z']) || tail.contains(['+', '-']);
    if value.contains(['T', 't']) && !zoned {
        "the time has no zone: add Z for UTC or an offset such as +01:00".to_owned()
    } else {
        format!("not an RFC 3339 time ({error})")
    }
}

impl Filter {
    /// Checks the flags; `now` anchors a relative `--since`.
    pub fn new(args: &LogsArgs, now: OffsetDateTime) -> Result<Filter, LogsError> {
        let since = args
            .since
            .as_deref()
            .map(|s| parse_since(s, now))
            .transpose()?;
        let until = args
            .until
            .as_deref()
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339).map_err(|e| LogsError::BadUntil {
                    value: s.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        // An empty item (`--status ,`, `500,`) is refused: dropped, `--status ,`
        // filtered nothing and matched every line.
        let status = args
            .status
            .iter()
            .map(|s| StatusMatch::parse(s))
            .collect::<Result<_, _>>()?;
        let wheres = args
            .where_
            .iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
                _ => Err(LogsError::BadWhere { value: w.clone() }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            level: args.level,
            service: args.service.clone(),
            request_id: args.request_id.clone().map(Story::new),
            trace_id: args.trace_id.clone(),
            user: args.user.clone(),
            route: args.route.clone(),
            status,
            method: args.method.clone(),
            since,
            until,
            min_duration: args.min_duration,
            message: args.message.clone(),
            wheres,
        })
    }

    pub fn matches(&mut self, line: &LogLine) -> bool {
        fn eq(line: &LogLine, key: &str, want: &Option<String>) -> bool {
            want.as_deref()
                .is_none_or(|w| line.str_field(key).as_deref() == Some(w))
        }
        if let Some(min) = self.level
            && line.level().is_none_or(|l| l < min)
        {
            return false;
        }
        if !(eq(line, "service", &self.service)
            && self
                .request_id
                .as_mut()
                .is_none_or(|story| story.holds(line))
            && eq(line, "trace_id", &self.trace_id)
            && eq(line, "user", &self.user)
            && eq(line, "route", &self.route)
            && eq(line, "message", &self.message))
        {
            return false;
        }
        if let Some(m) = &self.method
            && !line
                .str_field("method")
                .is_some_and(|have| have.eq_ignore_ascii_case(m))
        {
            return false;
        }
        if !self.status.is_empty()
            && !line
                .status()
                .is_some_and(|s| self.status.iter().any(|m| m.matches(s)))
        {
            return false;
        }
        if self.since.is_some_and(|t| line.timestamp < t)
            || self.until.is_some_and(|t| line.timestamp >= t)
        {
            return false;
        }
        if let Some(min) = self.min_duration
            && line.num_field("duration_ms").is_none_or(|d| d < min)
        {
            return false;
        }
        self.wheres
            .iter()
            .all(|(k, v)| line.field_text(k).as_deref() == Some(v.as_str()))
    }
}

/// `--request-id`: the lines of one request across both services. The inference
/// service's lines carry the id; the collector stores records in batches and says so
/// in a `records_stored` line listing every record's request id, written in the
/// scope of the batch's own request (`POST /log`). Lines of that batch request
/// after it (its access line, a slow write) belong to the story too.
#[derive(Debug, Clone)]
pub struct Story {
    id: String,
    /// Request ids of the batches that carried this request's record (a retried
    /// batch comes again under a new id), bounded.
    batches: Vec<String>,
}

/// More batches than this carrying one record means retries gone wrong; the story
/// keeps the first ones.
const MAX_BATCHES: usize = 16;

impl Story {
    pub fn new(id: String) -> Story {
        Story {
            id,
            batches: Vec::new(),
        }
    }

    fn holds(&mut self, line: &LogLine) -> bool {
        let own = line.str_field("request_id");
        let own = own.as_deref();
        if own == Some(self.id.as_str()) {
            return true;
        }
        if own.is_some_and(|b| self.batches.iter().any(|known| known == b)) {
            return true;
        }
        if !lists(line, &self.id) {
            return false;
        }
        if let Some(batch) = own
            && self.batches.len() < MAX_BATCHES
        {
            self.batches.push(batch.to_owned());
        }
        true
    }
}

/// The line's `request_ids` list holds `id`.
fn lists(line: &LogLine, id: &str) -> bool {
    let Some(list) = line.raw_field("request_ids") else {
        return false;
    };
    // Most batches do not hold it: a byte search first, parsing only on a hit (the id
    // may be written with escapes, so a miss on a list with backslashes parses too).
    if !list.contains(id) && !list.contains('\\') {
        return false;
    }
    serde_json::from_str::<Vec<Cow<'_, str>>>(list).is_ok_and(|ids| ids.iter().any(|i| i == id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn since_is_a_duration_or_a_time() {
        let now = datetime!(2026-12-01 21:00 UTC);
        assert_eq!(
            parse_since("15m", now).unwrap(),
            datetime!(2026-12-01 20:45 UTC)
        );
        assert_eq!(
            parse_since("2h", now).unwrap(),
            datetime!(2026-12-01 19:00 UTC)
        );
        assert_eq!(
            parse_since("2026-12-01T20:30:00Z", now).unwrap(),
            datetime!(2026-12-01 20:30 UTC)
        );
        let err = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(err.contains("15m or 2h"), "{err}");
        // A time without its zone says so, not "invalid character at 4".
        let err = parse_since("2026-12-05T10:47:56", now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no zone"), "{err}");
        let err = parse_since("2026-13-05T10:47:56Z", now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an RFC 3339 time"), "{err}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusMatch::parse("5xx").unwrap(), StatusMatch::Class(5));
        assert_eq!(StatusMatch::parse("404").unwrap(), StatusMatch::Exact(404));
        assert!(StatusMatch::parse("6xx").is_err());
        assert!(StatusMatch::parse("abc").is_err());
    }
}
