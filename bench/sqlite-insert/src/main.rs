//! What the prediction writer costs per row on a database the store creates (16 KiB
//! pages) and on one created with SQLite's default 4 KiB pages, as a database from
//! before vigil chose its page size keeps: the real schema, migrations and writer
//! (`Store::insert_here`, the call `vigil up`'s forwarder makes), batches of 2,000
//! rows like the forwarder's, fresh databases, alternating rounds. Rows look like the
//! ones `vigil up` stores under the HTTP benchmark: UUIDv7 prediction ids, v4 request
//! ids, one model, about 40 predictions a millisecond.
//!
//!   cargo run --release -p vigil-bench-sqlite-insert -- [rows=1000000] [rounds=3]

use std::time::Instant;

use vigil_records::{Record, Status};
use vigil_store::Store;
use vigil_store::testing::TempDir;

const BATCH: usize = 2_000;

fn records(n: usize) -> Vec<Record> {
    let start = 1_764_000_000_000i64;
    (0..n)
        .map(|i| Record {
            prediction_id: uuid::Uuid::now_v7().to_string(),
            model: "defect-detector".into(),
            model_version: "1.0.0".into(),
            ts_ms: start + i as i64 / 40,
            label: Some("ok".into()),
            confidence: Some(0.93),
            is_defect: false,
            latency_ms: 0.41,
            request_id: uuid::Uuid::new_v4().to_string(),
            trace_id: None,
            status: Status::Success,
            error_type: None,
            features: None,
            value: None,
        })
        .collect()
}

/// Microseconds per row to store `rows` into a fresh database with `page_size`-byte
/// pages (`None`: as the store creates it).
async fn round(rows: &[Record], page_size: Option<u32>) -> f64 {
    let dir = TempDir::new("bench-sqlite-insert");
    if let Some(page) = page_size {
        vigil_store::testing::sqlite_with_page_size(&dir.0.join("vigil.db"), page);
    }
    let store = Store::sqlite(&dir.0).await.expect("open the store");
    let started = Instant::now();
    for batch in rows.chunks(BATCH) {
        store
            .insert_here(batch, 0)
            .expect("SQLite writes in place")
            .expect("insert");
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / rows.len() as f64;
    store.close().await;
    us
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1_000_000, |a| a.parse().expect("rows"));
    let rounds: usize = args.next().map_or(3, |a| a.parse().expect("rounds"));
    let rows = records(n);
    let (mut old, mut new) = (Vec::new(), Vec::new());
    println!("{n} rows in batches of {BATCH}, {rounds} alternating rounds");
    for r in 1..=rounds {
        // Alternate which goes first: this VM's speed drifts within minutes.
        if r % 2 == 1 {
            old.push(round(&rows, Some(4096)).await);
            new.push(round(&rows, None).await);
        } else {
            new.push(round(&rows, None).await);
            old.push(round(&rows, Some(4096)).await);
        }
        println!(
            "round {r}: 4 KiB pages {:.3} µs/row, as created ({} bytes) {:.3} µs/row ({:.3})",
            old[r - 1],
            vigil_store::SQLITE_PAGE_SIZE,
            new[r - 1],
            new[r - 1] / old[r - 1]
        );
    }
    let mut ratios: Vec<f64> = old.iter().zip(&new).map(|(o, n)| n / o).collect();
    ratios.sort_by(f64::total_cmp);
    println!("median paired ratio {:.3}", ratios[ratios.len() / 2]);
}
