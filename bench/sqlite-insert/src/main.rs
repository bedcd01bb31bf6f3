//! What the prediction writer costs per row on a database as the store creates it,
//! against the layouts an older database of vigil's can still have: SQLite's default
//! 4 KiB pages (before vigil chose 16 KiB) and the two secondary indexes before
//! migration 0005 (time, and model and time, instead of one on time and model). The
//! real schema, migrations and writer (`Store::insert_here`, the call `vigil up`'s
//! forwarder makes), batches of 2,000 rows like the forwarder's, fresh databases,
//! alternating rounds, each layout's time a row over the as-created one's in the same
//! round. Rows look like the ones `vigil up` stores under the HTTP benchmark: UUIDv7
//! prediction ids, v4 request ids, one model, about 40 predictions a millisecond.
//!
//!   cargo run --release -p vigil-bench-sqlite-insert -- [rows=1000000] [rounds=3]

use std::path::Path;
use std::time::Instant;

use vigil_records::{Record, Status};
use vigil_store::Store;
use vigil_store::testing::TempDir;

const BATCH: usize = 2_000;

/// A database layout: its name and what turns a new store's file into it (before and
/// after the store opens it).
struct Layout {
    name: &'static str,
    before: fn(&Path),
    after: fn(&Path),
}

const LAYOUTS: [Layout; 3] = [
    Layout {
        name: "as created",
        before: |_| {},
        after: |_| {},
    },
    Layout {
        name: "4 KiB pages",
        before: |db| vigil_store::testing::sqlite_with_page_size(db, 4096),
        after: |_| {},
    },
    Layout {
        name: "two indexes (before 0005)",
        before: |_| {},
        after: |db| {
            rusqlite::Connection::open(db)
                .and_then(|c| {
                    c.execute_batch(
                        "DROP INDEX predictions_ts_model;
                         CREATE INDEX predictions_ts ON predictions (ts_ms, prediction_id);
                         CREATE INDEX predictions_model_ts ON predictions (model, ts_ms);",
                    )
                })
                .expect("the indexes before migration 0005");
        },
    },
];

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

/// Microseconds per row to store `rows` into a fresh database of `layout`.
async fn round(rows: &[Record], layout: &Layout) -> f64 {
    let dir = TempDir::new("bench-sqlite-insert");
    let db = dir.0.join("vigil.db");
    (layout.before)(&db);
    let store = Store::sqlite(&dir.0).await.expect("open the store");
    // The writer's connection is open already: the schema change reaches it through
    // the file (SQLite re-reads a schema another connection changed).
    (layout.after)(&db);
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
    let mut us = vec![Vec::new(); LAYOUTS.len()];
    println!(
        "{n} rows in batches of {BATCH}, {rounds} alternating rounds; as created: {} byte pages",
        vigil_store::SQLITE_PAGE_SIZE
    );
    for r in 0..rounds {
        // Alternate the order: this VM's speed drifts within minutes.
        let mut order: Vec<usize> = (0..LAYOUTS.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for i in order {
            us[i].push(round(&rows, &LAYOUTS[i]).await);
        }
        let created = us[0][r];
        let line: Vec<String> = LAYOUTS
            .iter()
            .zip(&us)
            .map(|(l, t)| format!("{} {:.3} µs/row ({:.3})", l.name, t[r], t[r] / created))
            .collect();
        println!("round {}: {}", r + 1, line.join(", "));
    }
    for (layout, times) in LAYOUTS.iter().zip(&us).skip(1) {
        let mut ratios: Vec<f64> = times.iter().zip(&us[0]).map(|(t, a)| t / a).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{}: median paired ratio to as created {:.3}",
            layout.name,
            ratios[ratios.len() / 2]
        );
    }
}
