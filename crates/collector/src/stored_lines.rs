//! How a stored batch is told in `records_stored` lines. The lines list the request id
//! of every record, so `vigil logs --request-id` can follow a prediction into the
//! database; but one line for a whole batch would not survive the log pipeline: a
//! `POST /log` batch may hold 10,000 records with request ids of up to 128 characters,
//! over a megabyte in one line, and Docker's and containerd's log drivers cut lines
//! into 16 KiB pieces (Promtail then ships broken JSON) while Loki refuses lines over
//! 256 KB by default. So a batch is told in as many lines as it takes to keep each
//! line's list of ids under [`MAX_IDS_BYTES`]; each line counts the records it lists,
//! so sums over the lines are the batch's.

use vigil_records::Record;

/// Most bytes the JSON array of one line's request ids may take. The rest of a line
/// (time, level, its own request and trace ids, the counts) is a few hundred bytes, so
/// a whole line stays within the 16 KiB a container log driver passes in one piece.
pub const MAX_IDS_BYTES: usize = 12 * 1024;

/// One `records_stored` line's share of a batch: consecutive records of it.
#[derive(Debug, Default, PartialEq)]
pub struct Part<'a> {
    /// Records of the batch this line stands for.
    pub records: u64,
    /// Of those, how many were new (the rest were already stored).
    pub new: u64,
    /// Their request ids; the rows of one request (consecutive records with the same
    /// id) are listed once.
    pub request_ids: Vec<&'a str>,
}

impl Part<'_> {
    pub fn duplicates(&self) -> u64 {
        self.records - self.new
    }
}

/// Splits `records` (with `new`, the store's answer for each, in the same order) into
/// the parts of its `records_stored` lines, in order. An empty batch has no part.
pub fn parts<'a>(records: &'a [Record], new: &[bool]) -> Vec<Part<'a>> {
    let mut parts = Vec::new();
    let mut part = Part::default();
    // The array's bytes so far: brackets, then each id with its separator.
    let mut bytes = 2;
    for (record, new) in records.iter().zip(new) {
        let id = record.request_id.as_str();
        if part.request_ids.last() != Some(&id) {
            let len = json_len(id);
            let mut comma = usize::from(!part.request_ids.is_empty());
            if bytes + comma + len > MAX_IDS_BYTES && comma == 1 {
                parts.push(std::mem::take(&mut part));
                (bytes, comma) = (2, 0);
            }
            bytes += comma + len;
            part.request_ids.push(id);
        }
        part.records += 1;
        part.new += u64::from(*new);
    }
    if part.records > 0 {
        parts.push(part);
    }
    parts
}

/// Bytes `s` takes as a JSON string as serde_json writes it: quoted, `"` and `\`
/// escaped with a backslash, other control characters as `\n`-style or `\u00XX`
/// escapes (request ids are printable ASCII; this holds for any string).
fn json_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(request_id: &str) -> Record {
        vigil_records::json::parse_body(
            serde_json::json!({
                "prediction_id": "p", "model": "m", "model_version": "1",
                "timestamp": "2026-12-02T19:00:00Z", "latency_ms": 1.0,
                "request_id": request_id, "status": "success", "label": "ok",
                "confidence": 0.9, "is_defect": false
            })
            .to_string()
            .as_bytes(),
            1,
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn a_small_batch_is_one_line_listing_each_request_once() {
        let records: Vec<Record> = ["a", "a", "b", "a"].into_iter().map(record).collect();
        let parts = parts(&records, &[true, true, false, true]);
        assert_eq!(
            parts,
            vec![Part {
                records: 4,
                new: 3,
                request_ids: vec!["a", "b", "a"],
            }]
        );
        assert_eq!(parts[0].duplicates(), 1);
        assert!(super::parts(&[], &[]).is_empty());
    }

    #[test]
    fn a_batch_of_long_ids_splits_into_lines_under_the_budget_that_add_up() {
        // 10,000 records (the collector's most per batch), 128-character ids with
        // characters that JSON escapes, two rows per request.
        let records: Vec<Record> = (0..10_000)
            .map(|i| record(&format!("{:\"<127}{}", i / 2, i / 2 % 10)))
            .collect();
        let new: Vec<bool> = (0..10_000).map(|i| i % 3 != 0).collect();
        let parts = parts(&records, &new);
        assert!(parts.len() > 1);
        for (i, part) in parts.iter().enumerate() {
            let list = serde_json::to_string(&part.request_ids).unwrap();
            assert!(list.len() <= MAX_IDS_BYTES, "{}", list.len());
            // Not split finer than it has to be: only the last line has room for more.
            if i + 1 < parts.len() {
                assert!(list.len() > MAX_IDS_BYTES - 300, "{}", list.len());
            }
        }
        let listed: Vec<&str> = parts.iter().flat_map(|p| p.request_ids.clone()).collect();
        let mut expected: Vec<&str> = records.iter().map(|r| r.request_id.as_str()).collect();
        expected.dedup();
        assert_eq!(listed, expected);
        assert_eq!(parts.iter().map(|p| p.records).sum::<u64>(), 10_000);
        assert_eq!(
            parts.iter().map(|p| p.new).sum::<u64>(),
            new.iter().filter(|n| **n).count() as u64
        );
    }

    #[test]
    fn json_len_is_what_serde_json_writes() {
        for s in [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "tab\there",
            "\u{1}ctl",
            "é",
        ] {
            assert_eq!(
                json_len(s),
                serde_json::to_string(s).unwrap().len(),
                "{s:?}"
            );
        }
    }
}
