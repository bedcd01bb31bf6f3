//! The store's contract, run against both backends: idempotent batched inserts,
//! filtered cursor paging, per-model stats, incidents, concurrent writers, and a
//! PostgreSQL that goes away and comes back.

use std::sync::Arc;

use vigil_store::testing::{Postgres, TempDir};
use vigil_store::{AlertEffect, Cursor, Filter, Incident, PageSize, Record, Status, Store};

fn record(i: usize, model: &str) -> Record {
    let defect = i.is_multiple_of(4);
    Record {
        prediction_id: format!("{model}-{i:06}"),
        model: model.into(),
        model_version: "1.0.0".into(),
        ts_ms: 1_700_000_000_000 + i as i64,
        label: Some(if defect { "defect" } else { "ok" }.into()),
        confidence: Some(0.5 + (i % 5) as f64 / 10.0),
        is_defect: defect,
        latency_ms: 1.5,
        request_id: format!("req-{i}"),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        status: Status::Success,
        error_type: None,
        features: Some("[70,250,2.5,45,1500,12]".into()),
        value: None,
    }
}

/// A regressor's record: a value, no label or confidence.
fn valued(i: usize, value: f64) -> Record {
    Record {
        label: None,
        confidence: None,
        is_defect: false,
        value: Some(value),
        ..record(i, "house-price")
    }
}

async fn contract(store: &Store) {
    // Batched insert, then the same batch again: stored once.
    let batch: Vec<Record> = (0..1500).map(|i| record(i, "defect-detector")).collect();
    let first = store.insert(&batch, 1).await.unwrap();
    assert_eq!((first.accepted, first.duplicates), (1500, 0));
    let again = store.insert(&batch, 2).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 1500));
    // A mixed batch: new and old ids.
    let mixed: Vec<Record> = (1490..1510).map(|i| record(i, "defect-detector")).collect();
    let m = store.insert(&mixed, 3).await.unwrap();
    assert_eq!((m.accepted, m.duplicates), (10, 10));
    // Which ones were new, in order (the collector counts stored records from this).
    assert_eq!(m.new, (1490..1510).map(|i| i >= 1500).collect::<Vec<_>>());
    let mut failed = record(0, "digits");
    failed.status = Status::Error;
    failed.error_type = Some("non_finite_output".into());
    failed.label = None;
    failed.confidence = None;
    failed.is_defect = false;
    store.insert(&[failed.clone()], 4).await.unwrap();

    // Round trip.
    let page = store
        .predictions(
            &Filter {
                model: Some("digits".into()),
                ..Filter::default()
            },
            None,
            PageSize::rows(10),
        )
        .await
        .unwrap();
    assert_eq!(page.records, vec![failed]);
    assert!(!page.full);

    // Filters and cursor paging, newest first, no gaps or repeats.
    let filter = Filter {
        model: Some("defect-detector".into()),
        defect: Some(true),
        ..Filter::default()
    };
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .predictions(&filter, cursor.as_ref(), PageSize::rows(100))
            .await
            .unwrap()
            .records;
        if page.is_empty() {
            break;
        }
        assert!(
            page.iter()
                .all(|r| r.is_defect && r.label.as_deref() == Some("defect"))
        );
        let last = page.last().unwrap();
        cursor = Some(Cursor {
            ts_ms: last.ts_ms,
            prediction_id: last.prediction_id.clone(),
        });
        seen.extend(page.into_iter().map(|r| r.ts_ms));
    }
    assert_eq!(seen.len(), 1510 / 4 + 1);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    let window = Filter {
        since_ms: Some(1_700_000_000_010),
        until_ms: Some(1_700_000_000_020),
        ..Filter::default()
    };
    assert_eq!(
        store
            .predictions(&window, None, PageSize::rows(100))
            .await
            .unwrap()
            .records
            .len(),
        10
    );

    // A regressor's values, stored in shuffled order, read back and summarised.
    let values: Vec<Record> = (1..=200)
        .map(|i| valued(i, ((i * 37) % 200 + 1) as f64))
        .collect();
    store.insert(&values, 5).await.unwrap();
    let mut broken = valued(0, 0.0);
    (broken.status, broken.error_type, broken.value) =
        (Status::Error, Some("timeout".into()), None);
    store.insert(&[broken], 6).await.unwrap();
    let house = Filter {
        model: Some("house-price".into()),
        ..Filter::default()
    };
    let page = store
        .predictions(&house, None, PageSize::rows(1000))
        .await
        .unwrap();
    assert!(!page.full, "201 records, none after them");
    let page = page.records;
    assert_eq!(page.len(), 201);
    let stored: Vec<(String, Option<f64>)> = page
        .iter()
        .map(|r| (r.prediction_id.clone(), r.value))
        .collect();
    assert!(stored.contains(&("house-price-000037".into(), Some(170.0))));
    assert!(stored.contains(&("house-price-000000".into(), None)));

    // A byte bound ends pages early, and paging on from them misses nothing.
    for bytes in [1, 10_000] {
        let size = PageSize { rows: 1000, bytes };
        let (mut seen, mut cursor) = (Vec::new(), None::<Cursor>);
        loop {
            let page = store
                .predictions(&house, cursor.as_ref(), size)
                .await
                .unwrap();
            let records = page.records.len();
            assert!(
                (1..100).contains(&records),
                "{records} records of {bytes} bytes"
            );
            let last = page.records.last().unwrap();
            cursor = Some(Cursor {
                ts_ms: last.ts_ms,
                prediction_id: last.prediction_id.clone(),
            });
            seen.extend(page.records.into_iter().map(|r| r.prediction_id));
            if !page.full {
                break;
            }
            if bytes == 1 {
                assert_eq!(records, 1);
            }
            if seen.len() == 201 {
                // The last record ended a page at its bound: the next is empty.
                let rest = store
                    .predictions(&house, cursor.as_ref(), size)
                    .await
                    .unwrap();
                assert!(rest.records.is_empty() && !rest.full);
                break;
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            (seen.len(), unique.len()),
            (201, 201),
            "{bytes} bytes a page"
        );
    }

    // Stats.
    let stats = store.stats(0, i64::MAX).await.unwrap();
    let house = stats.iter().find(|s| s.model == "house-price").unwrap();
    assert_eq!((house.count, house.errors), (201, 1));
    let v = house.value.as_ref().expect("a regressor's values");
    assert_eq!(
        (v.mean, v.min, v.p50, v.p90, v.p99, v.max),
        (100.5, 1.0, 100.0, 180.0, 198.0, 200.0)
    );
    let dd = stats.iter().find(|s| s.model == "defect-detector").unwrap();
    assert_eq!(dd.count, 1510);
    assert_eq!(dd.defects, 378);
    assert!((dd.defect_rate - 378.0 / 1510.0).abs() < 1e-9);
    assert_eq!(dd.labels["defect"], 378);
    assert_eq!(dd.labels["ok"], 1132);
    assert_eq!(dd.value, None);
    let digits = stats.iter().find(|s| s.model == "digits").unwrap();
    assert_eq!(
        (digits.count, digits.errors, digits.mean_confidence),
        (1, 1, None)
    );

    // Incidents: fire twice (one incident), resolve, fire again (a new one).
    let incident = |id: &str| Incident {
        id: id.into(),
        fingerprint: "abc123".into(),
        alertname: "HighErrorRate".into(),
        severity: "critical".into(),
        status: "open".into(),
        summary: Some("errors".into()),
        labels: serde_json::json!({"alertname": "HighErrorRate"}),
        starts_at_ms: 10,
        opened_ms: 20,
        resolved_ms: None,
    };
    assert_eq!(
        store.alert_firing(&incident("i1")).await.unwrap(),
        AlertEffect::Opened
    );
    assert_eq!(
        store.alert_firing(&incident("i2")).await.unwrap(),
        AlertEffect::AlreadyOpen
    );
    assert_eq!(store.open_incidents().await.unwrap(), 1);
    assert_eq!(
        store.alert_resolved("abc123", 30).await.unwrap(),
        AlertEffect::Resolved
    );
    assert_eq!(
        store.alert_resolved("abc123", 31).await.unwrap(),
        AlertEffect::NothingOpen
    );
    assert_eq!(
        store.alert_firing(&incident("i3")).await.unwrap(),
        AlertEffect::Opened
    );
    let resolved = store.incidents(Some("resolved"), 10).await.unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].id.as_str(), resolved[0].resolved_ms),
        ("i1", Some(30))
    );
    assert_eq!(resolved[0].labels["alertname"], "HighErrorRate");
    assert_eq!(store.incidents(Some("open"), 10).await.unwrap()[0].id, "i3");
    assert_eq!(store.incidents(None, 10).await.unwrap().len(), 2);
}

async fn concurrent_writers(store: Arc<Store>) {
    let writers: Vec<_> = (0..50)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..4 {
                    let batch: Vec<Record> = (0..25)
                        .map(|i| record(w * 1000 + b * 100 + i, "concurrent"))
                        .collect();
                    store.insert(&batch, 0).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let stats = store.stats(0, i64::MAX).await.unwrap();
    assert_eq!(
        stats
            .iter()
            .find(|s| s.model == "concurrent")
            .unwrap()
            .count,
        50 * 4 * 25
    );
}

/// Notifications of one alert at the same moment (an Alertmanager HA pair sends both)
/// open one incident: on PostgreSQL a check and then an insert let several in.
async fn one_incident_for_simultaneous_alerts(store: Arc<Store>) {
    // Every connection of the pool open first: connecting one by one spaces the racers.
    let warm: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.open_incidents().await.unwrap() })
        })
        .collect();
    for w in warm {
        w.await.unwrap();
    }
    for round in 0..10 {
        let firing: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let incident = Incident {
                        id: format!("race-{round}-{i}"),
                        fingerprint: format!("race-{round}"),
                        alertname: "Race".into(),
                        severity: "warning".into(),
                        status: "open".into(),
                        summary: None,
                        labels: serde_json::json!({"alertname": "Race"}),
                        starts_at_ms: 10,
                        opened_ms: 20,
                        resolved_ms: None,
                    };
                    store.alert_firing(&incident).await.unwrap()
                })
            })
            .collect();
        let mut opened = 0;
        for f in firing {
            if f.await.unwrap() == AlertEffect::Opened {
                opened += 1;
            }
        }
        assert_eq!(opened, 1, "round {round}");
    }
    assert_eq!(store.open_incidents().await.unwrap(), 10);
    assert_eq!(store.incidents(None, 1000).await.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_alerts_open_one_incident_on_sqlite() {
    let dir = TempDir::new("sqlite-alert-race");
    one_incident_for_simultaneous_alerts(Arc::new(Store::open(None, &dir.0).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_alerts_open_one_incident_on_postgres() {
    let pg = Postgres::start();
    let store = Store::open(Some(&pg.database()), std::path::Path::new("/x"))
        .await
        .unwrap();
    one_incident_for_simultaneous_alerts(Arc::new(store)).await;
}

/// Duplicate open incidents from before the unique index (migration 0006): the first
/// opened stays open, the others are closed at the moment they were opened.
#[tokio::test]
async fn duplicate_open_incidents_of_earlier_versions_merge_into_the_first() {
    let dir = TempDir::new("sqlite-duplicate-incidents");
    Store::open(None, &dir.0).await.unwrap().close().await;
    let db = rusqlite::Connection::open(dir.0.join("vigil.db")).unwrap();
    db.execute_batch(
        "DROP INDEX incidents_one_open; DELETE FROM _sqlx_migrations WHERE version = 6;
         INSERT INTO incidents (id, fingerprint, alertname, severity, status, labels,
                                starts_at_ms, opened_ms)
         VALUES ('b', 'fp', 'A', 'warning', 'open', '{}', 1, 20),
                ('a', 'fp', 'A', 'warning', 'open', '{}', 1, 20),
                ('c', 'fp', 'A', 'warning', 'open', '{}', 1, 10),
                ('d', 'other', 'B', 'warning', 'open', '{}', 1, 30);",
    )
    .unwrap();
    drop(db);
    let store = Store::open(None, &dir.0).await.unwrap();
    let mut open: Vec<String> = store
        .incidents(Some("open"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    open.sort();
    assert_eq!(open, ["c", "d"]);
    let mut closed: Vec<(String, Option<i64>)> = store
        .incidents(Some("resolved"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.resolved_ms))
        .collect();
    closed.sort();
    assert_eq!(
        closed,
        [("a".to_owned(), Some(20)), ("b".to_owned(), Some(20))]
    );
}

/// A database that answers reads but takes no write (its file or table locked by
/// another process) fails the write probe, within about a second, and passes it again
/// once the lock is gone; the read-only ping passes throughout.
#[tokio::test]
async fn the_write_probe_fails_while_another_process_holds_the_write_lock() {
    let dir = TempDir::new("sqlite-write-probe");
    let store = Store::open(None, &dir.0).await.unwrap();
    store.write_probe(1).await.unwrap();
    let other = rusqlite::Connection::open(dir.0.join("vigil.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = std::time::Instant::now();
    assert!(store.write_probe(2).await.is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(store.ping().await, "reads still answer");
    other.execute_batch("ROLLBACK").unwrap();
    store.write_probe(3).await.unwrap();
}

#[tokio::test]
async fn the_write_probe_fails_while_postgres_takes_no_write() {
    use sqlx::Connection;
    let pg = Postgres::start();
    let url = pg.database();
    let store = Store::open(Some(&url), std::path::Path::new("/x"))
        .await
        .unwrap();
    store.write_probe(1).await.unwrap();
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE heartbeat IN ACCESS EXCLUSIVE MODE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(store.write_probe(2).await.is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(store.ping().await, "the server still answers");
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    store.write_probe(3).await.unwrap();
}

#[tokio::test]
async fn sqlite_meets_the_contract() {
    let dir = TempDir::new("sqlite");
    let store = Store::open(None, &dir.0).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert!(dir.0.join("vigil.db").exists());
    contract(&store).await;
    // Reopening applies no migration twice and keeps the data.
    store.close().await;
    let again = Store::open(None, &dir.0).await.unwrap();
    assert_eq!(again.stats(0, i64::MAX).await.unwrap().len(), 3);
}

/// The page size of the database file, read apart from the store.
fn page_size(db: &std::path::Path) -> u32 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap()
}

/// A database the store creates has 16 KiB pages. One created before (4 KiB, SQLite's
/// default) keeps its pages, which SQLite cannot change in WAL mode, and works as
/// before.
#[tokio::test]
async fn new_sqlite_databases_get_16_kib_pages_and_older_ones_keep_theirs() {
    let new = TempDir::new("sqlite-pages-new");
    let store = Store::open(None, &new.0).await.unwrap();
    store.close().await;
    assert_eq!(page_size(&new.0.join("vigil.db")), 16_384);

    let old = TempDir::new("sqlite-pages-old");
    let db = old.0.join("vigil.db");
    vigil_store::testing::sqlite_with_page_size(&db, 4096);
    let store = Store::open(None, &old.0).await.unwrap();
    contract(&store).await;
    store.close().await;
    assert_eq!(page_size(&db), 4096);
}

/// Each stored prediction writes its table row, its primary key and one time index
/// (a fourth B-tree cost ~20 % more a row, docs/BENCHMARKS.md): the per-model reads
/// take the model from that index instead of an index of their own.
#[tokio::test]
async fn predictions_are_indexed_once_by_time_and_model_reads_use_it() {
    let dir = TempDir::new("sqlite-indexes");
    let store = Store::open(None, &dir.0).await.unwrap();
    store.close().await;
    let db = rusqlite::Connection::open(dir.0.join("vigil.db")).unwrap();
    let mut indexes = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'predictions'")
        .unwrap();
    let names: Vec<String> = indexes
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        names,
        ["sqlite_autoindex_predictions_1", "predictions_ts_model"]
    );
    let plan = |sql: &str| -> String {
        let mut q = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        q.query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ")
    };
    // The counts of a window's predictions (GET /quality, for one model or every
    // model) and a listing filtered by model.
    for sql in [
        "SELECT model, COUNT(*) FROM predictions WHERE ts_ms >= 1 AND ts_ms < 2 AND model = 'm' AND status = 'success' GROUP BY model",
        "SELECT model, COUNT(*) FROM predictions WHERE ts_ms >= 1 AND ts_ms < 2 AND status = 'success' GROUP BY model",
        "SELECT * FROM predictions WHERE model = 'm' ORDER BY ts_ms DESC, prediction_id DESC LIMIT 50",
    ] {
        let plan = plan(sql);
        assert!(
            plan.contains("USING INDEX predictions_ts_model"),
            "{sql}: {plan}"
        );
    }
    // Counts per model over a window (the stats) never touch the table.
    let totals = plan(
        "SELECT model, COUNT(*) FROM predictions WHERE ts_ms >= 1 AND ts_ms < 2 GROUP BY model",
    );
    assert!(
        totals.contains("COVERING INDEX predictions_ts_model"),
        "{totals}"
    );
}

#[tokio::test]
async fn postgres_meets_the_contract() {
    let pg = Postgres::start();
    let store = Store::open(Some(&pg.database()), std::path::Path::new("/nonexistent"))
        .await
        .unwrap();
    assert_eq!(store.backend(), "postgres");
    contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_sqlite_writers_lose_nothing() {
    let dir = TempDir::new("sqlite-concurrent");
    concurrent_writers(Arc::new(Store::open(None, &dir.0).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_postgres_writers_lose_nothing() {
    let pg = Postgres::start();
    concurrent_writers(Arc::new(
        Store::open(Some(&pg.database()), std::path::Path::new("/x"))
            .await
            .unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn postgres_going_away_is_an_error_per_call_and_recovers() {
    let pg = Postgres::start();
    let store = Store::open(Some(&pg.database()), std::path::Path::new("/x"))
        .await
        .unwrap();
    assert!(store.ping().await);
    pg.stop();
    assert!(!store.ping().await);
    assert!(store.insert(&[record(1, "m")], 0).await.is_err());
    pg.restart();
    // The pool reconnects on its own.
    let mut ok = false;
    for _ in 0..100 {
        if store.ping().await {
            ok = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(ok, "store did not reconnect");
    assert_eq!(
        store.insert(&[record(1, "m")], 0).await.unwrap().accepted,
        1
    );
}

#[tokio::test]
async fn only_postgres_urls_are_accepted() {
    let err = Store::open(Some("mysql://x"), std::path::Path::new("/x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("postgres://"), "{err}");
}
