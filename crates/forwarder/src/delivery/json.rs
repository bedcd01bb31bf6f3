//! A batch as a JSON `POST /log` body (`{"records":[…]}`), for a collector that has
//! not advertised the binary encoding.

use vigil_records::packed;

use crate::Batch;

/// Encodes `batch`'s records as `{"records":[…]}`. A record that does not decode (only
/// a bug in this process could cause that) is left out and reported.
pub(super) fn encode(batch: &Batch) -> (Vec<u8>, Result<(), String>) {
    let mut body = Vec::with_capacity(16 + batch.len() * 360);
    body.extend_from_slice(b"{\"records\":[");
    let mut features = Vec::new();
    let mut outcome = Ok(());
    let mut first = true;
    for record in packed::records(batch.records()) {
        let encoded = record
            .map_err(|e| e.to_string())
            .and_then(|bytes| packed::read(bytes, &mut features).map_err(|e| e.to_string()));
        match encoded {
            Ok(record) => {
                let mark = body.len();
                if !first {
                    body.push(b',');
                }
                match serde_json::to_writer(&mut body, &record) {
                    Ok(()) => first = false,
                    Err(e) => {
                        body.truncate(mark);
                        outcome = Err(e.to_string());
                    }
                }
            }
            Err(e) => outcome = Err(e),
        }
    }
    body.extend_from_slice(b"]}");
    (body, outcome)
}
