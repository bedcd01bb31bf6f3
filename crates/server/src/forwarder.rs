//! The prediction-record forwarder: every prediction becomes a record that travels to
//! the collector in batches, off the request path. Handlers only `try_send` into a
//! bounded queue; one task batches, posts with retry and backoff, and while the
//! collector is unreachable writes batches to a disk spool under the data dir, which
//! it replays (oldest first) once the collector answers again. `prediction_id` is the
//! collector's idempotency key, so re-sending after a lost acknowledgement or a crash
//! never stores a record twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vigil_collector::record::{RecordRef, WireRecord};

/// Settings of the forwarder.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Base URL of the collector, e.g. `http://127.0.0.1:8001`.
    pub collector_url: String,
    /// Where batches wait while the collector is unreachable.
    pub spool_dir: PathBuf,
    /// Records held in memory before new ones are dropped (and counted).
    pub queue_capacity: usize,
    /// Records per `POST /log`.
    pub batch_size: usize,
    /// A partial batch is sent after this long.
    pub flush_interval: Duration,
    /// Tries per batch before it is spooled.
    pub attempts: u32,
    /// First retry delay; doubles per try up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Records the spool may hold; the oldest segments go (counted) beyond it.
    pub max_spool_records: u64,
}

impl ForwarderConfig {
    pub fn new(collector_url: impl Into<String>, spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            collector_url: collector_url.into(),
            spool_dir: spool_dir.into(),
            queue_capacity: 100_000,
            batch_size: 500,
            flush_interval: Duration::from_millis(200),
            attempts: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_spool_records: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// `prediction_log_records_total{outcome}` and `prediction_log_spool_records`.
#[derive(Debug, Clone)]
pub struct ForwarderMetrics {
    sent: Counter,
    spooled: Counter,
    retried: Counter,
    dropped: Counter,
    spool: Gauge,
}

impl ForwarderMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let family: Family<Outcome, Counter> = Family::default();
        let get = |outcome| family.get_or_create(&Outcome { outcome }).clone();
        let m = Self {
            sent: get("sent"),
            spooled: get("spooled"),
            retried: get("retried"),
            dropped: get("dropped"),
            spool: Gauge::default(),
        };
        registry.register(
            "prediction_log_records",
            "Prediction records by what happened to them: sent, spooled, retried, dropped",
            family,
        );
        registry.register(
            "prediction_log_spool_records",
            "Prediction records waiting in the disk spool",
            m.spool.clone(),
        );
        m
    }
}

/// The handle handlers use. Cloning is cheap.
/// Records already serialized (compact JSON objects, which never contain a raw
/// newline), stored back to back: record `i` is `data[ends[i - 1]..ends[i]]`. Records
/// are serialized once, when submitted; batches, request bodies and spool files are
/// byte copies of them. No owned record per prediction lives in the queue.
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn with_capacity(records: usize) -> Self {
        Self {
            // About 300 bytes per record; a larger batch just grows.
            data: Vec::with_capacity(records * 320),
            ends: Vec::with_capacity(records),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn push(&mut self, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len());
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Room for `records` more records of typical size.
    fn reserve(&mut self, records: usize) {
        self.data.reserve(records * 320);
        self.ends.reserve(records);
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.data[a..b])
    }

    /// Splits into batches of at most `size` records, in order.
    fn chunks(self, size: usize) -> Vec<Batch> {
        if self.len() <= size {
            return vec![self];
        }
        let mut out = Vec::new();
        let mut current = Batch::with_capacity(size);
        for record in self.iter() {
            if current.len() == size {
                out.push(std::mem::replace(&mut current, Batch::with_capacity(size)));
            }
            current.push(record);
        }
        out.push(current);
        out
    }

    /// The `POST /log` body: `{"records":[…]}`.
    fn body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.data.len() + self.len() + 16);
        body.extend_from_slice(b"{\"records\":[");
        for (i, record) in self.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(record);
        }
        body.extend_from_slice(b"]}");
        body
    }

    /// One record per line, as spool files hold them.
    fn to_jsonl(&self) -> Vec<u8> {
        let mut text = Vec::with_capacity(self.data.len() + self.len());
        for record in self.iter() {
            text.extend_from_slice(record);
            text.push(b'\n');
        }
        text
    }

    /// Reads a spool file back; lines that are not a record (a damaged file) are
    /// skipped rather than sent to be rejected.
    fn from_jsonl(text: &[u8]) -> Self {
        let mut batch = Batch::default();
        for line in text.split(|b| *b == b'\n') {
            if serde_json::from_slice::<WireRecord>(line).is_ok() {
                batch.push(line);
            }
        }
        batch
    }
}

thread_local! {
    /// Where a handler serializes its record before taking the queue's lock, so the
    /// lock is held for a copy, not for the serialization.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Debug, Clone)]
pub struct Forwarder {
    queue: Arc<Queue>,
    metrics: ForwarderMetrics,
}

/// Records waiting to be sent. Handlers append under a short lock; the task swaps
/// the whole vector out. Nobody is woken per record (a wake-up per prediction cost
/// more than the prediction); the task is woken only when a full batch is waiting.
#[derive(Debug)]
struct Queue {
    records: Mutex<Batch>,
    full_batch: tokio::sync::Notify,
    capacity: usize,
    batch_size: usize,
}

/// The running forwarding task.
#[derive(Debug)]
pub struct ForwarderTask {
    join: tokio::task::JoinHandle<u64>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl ForwarderTask {
    /// Stops taking new records and resolves once every queued one is sent or spooled;
    /// returns how many were flushed this way.
    pub async fn finish(self) -> u64 {
        let _ = self.stop.send(());
        self.join.await.unwrap_or(0)
    }
}

impl Forwarder {
    /// Starts the forwarding task.
    pub fn start(
        config: ForwarderConfig,
        metrics: ForwarderMetrics,
    ) -> std::io::Result<(Self, ForwarderTask)> {
        std::fs::create_dir_all(&config.spool_dir)?;
        let queue = Arc::new(Queue {
            records: Mutex::new(Batch::with_capacity(config.batch_size)),
            full_batch: tokio::sync::Notify::new(),
            capacity: config.queue_capacity.max(1),
            batch_size: config.batch_size.max(1),
        });
        let spool = Spool::open(&config.spool_dir, config.max_spool_records, metrics.clone())?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let worker = Worker {
            spare: Batch::with_capacity(config.batch_size),
            config,
            metrics: metrics.clone(),
            client,
            spool,
            down: false,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let join = tokio::spawn(worker.run(queue.clone(), stopped));
        Ok((Self { queue, metrics }, ForwarderTask { join, stop }))
    }

    /// Queues a record; never waits. A full queue drops it (counted as `dropped`).
    pub fn submit(&self, record: &RecordRef<'_>) {
        SCRATCH.with_borrow_mut(|json| {
            json.clear();
            if let Err(e) = serde_json::to_writer(&mut *json, record) {
                // Only a non-string map key could fail here; there is none.
                tracing::error!(target: "vigil::forwarder", error = %e, "record_not_serializable");
                self.metrics.dropped.inc();
                return;
            }
            let mut records = self.queue.records.lock();
            if records.len() >= self.queue.capacity {
                drop(records);
                self.metrics.dropped.inc();
                return;
            }
            records.push(json);
            let full = records.len() == self.queue.batch_size;
            drop(records);
            if full {
                self.queue.full_batch.notify_one();
            }
        });
    }
}

struct Worker {
    config: ForwarderConfig,
    /// The buffer that replaces the queue's at the next swap.
    spare: Batch,
    metrics: ForwarderMetrics,
    client: reqwest::Client,
    spool: Spool,
    /// The last attempt failed: new batches go straight to the spool until a replay
    /// succeeds.
    down: bool,
}

enum Sent {
    Ok,
    /// The collector refused the batch as invalid: resending cannot help.
    Rejected(String),
    Failed(String),
}

impl Worker {
    async fn run(mut self, queue: Arc<Queue>, mut stop: tokio::sync::oneshot::Receiver<()>) -> u64 {
        let mut replay = tokio::time::interval(self.config.backoff.max(Duration::from_millis(50)));
        replay.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            tokio::select! {
                () = queue.full_batch.notified() => {}
                () = tokio::time::sleep(self.config.flush_interval) => {}
                _ = replay.tick(), if self.spool.records() > 0 => {}
                _ = &mut stop, if !stopping => stopping = true,
            }
            // Handlers still running during shutdown can add records until the last
            // swap; the server has drained by the time `finish` is called. What is left
            // behind has room for a full batch: handlers append under the lock, and
            // growing from empty would copy the records over and over there.
            let taken = {
                let mut queued = queue.records.lock();
                if queued.is_empty() {
                    None
                } else {
                    let spare = std::mem::take(&mut self.spare);
                    Some(std::mem::replace(&mut *queued, spare))
                }
            };
            let mut n = 0;
            if let Some(mut taken) = taken {
                n = taken.len() as u64;
                if taken.len() <= self.config.batch_size {
                    self.deliver(&taken, !stopping).await;
                } else {
                    for batch in std::mem::take(&mut taken).chunks(self.config.batch_size) {
                        self.deliver(&batch, !stopping).await;
                    }
                }
                // Reused as the next buffer handlers fill: no large allocation (and
                // no fresh pages to zero) per batch.
                taken.clear();
                taken.reserve(self.config.batch_size);
                self.spare = taken;
            }
            if stopping {
                return n;
            }
            if self.spool.records() > 0 {
                self.replay_one().await;
            }
        }
    }

    /// Sends a batch (with retries unless the collector is known to be down, or we are
    /// shutting down), else spools it.
    async fn deliver(&mut self, batch: &Batch, may_retry: bool) {
        let n = batch.len() as u64;
        if !self.down {
            let tries = if may_retry {
                self.config.attempts.max(1)
            } else {
                1
            };
            let mut delay = self.config.backoff;
            for attempt in 1..=tries {
                match self.post(batch).await {
                    Sent::Ok => {
                        self.metrics.sent.inc_by(n);
                        return;
                    }
                    Sent::Rejected(why) => {
                        tracing::error!(target: "vigil::forwarder", records = n, reason = %why, "prediction_records_rejected");
                        self.metrics.dropped.inc_by(n);
                        return;
                    }
                    Sent::Failed(why) if attempt < tries => {
                        tracing::warn!(target: "vigil::forwarder", records = n, attempt, reason = %why, "prediction_log_retry");
                        self.metrics.retried.inc_by(n);
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(self.config.max_backoff);
                    }
                    Sent::Failed(why) => {
                        tracing::warn!(target: "vigil::forwarder", records = n, reason = %why, "collector_unreachable");
                        self.down = true;
                    }
                }
            }
        }
        match self.spool.push(batch) {
            Ok(()) => {
                self.metrics.spooled.inc_by(n);
            }
            Err(e) => {
                tracing::error!(target: "vigil::forwarder", records = n, error = %e, "spool_write_failed");
                self.metrics.dropped.inc_by(n);
            }
        }
    }

    /// Tries the oldest spooled batch once; success deletes it and marks the collector up.
    async fn replay_one(&mut self) {
        let Some((path, batch)) = self.spool.oldest() else {
            return;
        };
        match self.post(&batch).await {
            Sent::Ok => {
                self.metrics.sent.inc_by(batch.len() as u64);
                self.spool.remove(&path, batch.len() as u64);
                if self.down {
                    tracing::info!(target: "vigil::forwarder", spooled = self.spool.records(), "collector_reachable");
                }
                self.down = false;
            }
            Sent::Rejected(why) => {
                tracing::error!(target: "vigil::forwarder", records = batch.len(), reason = %why, "prediction_records_rejected");
                self.metrics.dropped.inc_by(batch.len() as u64);
                self.spool.remove(&path, batch.len() as u64);
            }
            Sent::Failed(_) => self.down = true,
        }
    }

    async fn post(&self, batch: &Batch) -> Sent {
        let url = format!("{}/log", self.config.collector_url.trim_end_matches('/'));
        match self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(batch.body())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Sent::Ok,
            Ok(r)
                if r.status().is_client_error()
                    && r.status() != reqwest::StatusCode::REQUEST_TIMEOUT
                    && r.status() != reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                Sent::Rejected(format!("status {}", r.status()))
            }
            Ok(r) => Sent::Failed(format!("status {}", r.status())),
            Err(e) => Sent::Failed(e.to_string()),
        }
    }
}

/// Batches on disk, one file per batch (`<sequence>.jsonl`, a record per line),
/// written to a temporary name and renamed so a crash never leaves half a batch.
struct Spool {
    dir: PathBuf,
    /// Most records kept on disk.
    max: u64,
    next: u64,
    records: AtomicU64,
    metrics: ForwarderMetrics,
}

impl Spool {
    fn open(dir: &Path, max: u64, metrics: ForwarderMetrics) -> std::io::Result<Self> {
        let mut next = 0;
        let mut records = 0;
        for (seq, path) in Self::segments_in(dir)? {
            next = next.max(seq + 1);
            records += std::fs::read_to_string(&path)
                .map(|t| t.lines().count() as u64)
                .unwrap_or(0);
        }
        metrics.spool.set(records as i64);
        if records > 0 {
            tracing::info!(target: "vigil::forwarder", records, dir = %dir.display(), "spool_found");
        }
        Ok(Self {
            dir: dir.to_owned(),
            max: max.max(1),
            next,
            records: AtomicU64::new(records),
            metrics,
        })
    }

    fn segments_in(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
        let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
            .collect();
        segments.sort();
        Ok(segments)
    }

    fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    fn set(&self, n: u64) {
        self.records.store(n, Ordering::Relaxed);
        self.metrics.spool.set(n as i64);
    }

    fn push(&mut self, batch: &Batch) -> std::io::Result<()> {
        let text = batch.to_jsonl();
        let path = self.dir.join(format!("{:020}.jsonl", self.next));
        let tmp = self.dir.join(format!("{:020}.tmp", self.next));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        self.next += 1;
        self.set(self.records() + batch.len() as u64);
        self.enforce_bound()
    }

    /// Drops the oldest segments (counted) while the spool holds too many records.
    fn enforce_bound(&mut self) -> std::io::Result<()> {
        while self.records() > self.max {
            let Some((_, oldest)) = Self::segments_in(&self.dir)?.into_iter().next() else {
                break;
            };
            let n = std::fs::read_to_string(&oldest)
                .map(|t| t.lines().count() as u64)
                .unwrap_or(0);
            std::fs::remove_file(&oldest)?;
            self.metrics.dropped.inc_by(n);
            self.set(self.records().saturating_sub(n));
            tracing::warn!(target: "vigil::forwarder", records = n, "spool_full_dropped_oldest");
        }
        Ok(())
    }

    fn oldest(&self) -> Option<(PathBuf, Batch)> {
        let (_, path) = Self::segments_in(&self.dir).ok()?.into_iter().next()?;
        let text = std::fs::read(&path).ok()?;
        Some((path, Batch::from_jsonl(&text)))
    }

    fn remove(&mut self, path: &Path, n: u64) {
        if std::fs::remove_file(path).is_ok() {
            self.set(self.records().saturating_sub(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> WireRecord {
        WireRecord {
            prediction_id: id.into(),
            model: "m".into(),
            model_version: "1".into(),
            timestamp: "2026-11-22T21:00:00Z".into(),
            label: Some("ok".into()),
            confidence: Some(0.9),
            is_defect: false,
            latency_ms: 1.0,
            request_id: "r".into(),
            trace_id: None,
            status: vigil_store::Status::Success,
            error_type: None,
            features: None,
        }
    }

    fn batch(records: &[WireRecord]) -> Batch {
        let mut b = Batch::default();
        for r in records {
            b.push(&serde_json::to_vec(&RecordRef::from(r)).unwrap());
        }
        b
    }

    fn ids(batch: &Batch) -> Vec<String> {
        batch
            .iter()
            .map(|r| {
                serde_json::from_slice::<WireRecord>(r)
                    .unwrap()
                    .prediction_id
            })
            .collect()
    }

    #[test]
    fn batches_split_into_bodies_and_spool_lines_without_losing_a_record() {
        let records: Vec<WireRecord> = (0..7).map(|i| record(&format!("p{i}"))).collect();
        let all = batch(&records);
        let chunks = all.chunks(3);
        assert_eq!(chunks.iter().map(Batch::len).collect::<Vec<_>>(), [3, 3, 1]);
        let parsed: Vec<String> = chunks.iter().flat_map(ids).collect();
        assert_eq!(parsed, (0..7).map(|i| format!("p{i}")).collect::<Vec<_>>());
        // The POST body is what the collector parses.
        let body = chunks[0].body();
        let sent = vigil_collector::record::parse_body(&body, 10).unwrap();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[2].prediction_id, "p2");
        // Spool lines read back as the same batch; a damaged line is skipped.
        let mut lines = chunks[1].to_jsonl();
        lines.extend_from_slice(b"{\"prediction_id\":\n");
        assert_eq!(ids(&Batch::from_jsonl(&lines)), ["p3", "p4", "p5"]);
    }

    fn spool_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-spool-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_full_spool_drops_the_oldest_batches_and_counts_them() {
        let dir = spool_dir();
        let metrics = ForwarderMetrics::register(&mut Registry::default());
        let mut spool = Spool::open(&dir, 5, metrics.clone()).unwrap();
        spool.push(&batch(&[record("a1"), record("a2")])).unwrap();
        spool.push(&batch(&[record("b1"), record("b2")])).unwrap();
        assert_eq!(spool.records(), 4);
        // A third batch overflows the bound of 5: the oldest batch goes.
        spool.push(&batch(&[record("c1"), record("c2")])).unwrap();
        assert_eq!(spool.records(), 4);
        assert_eq!(metrics.dropped.get(), 2);
        assert_eq!(metrics.spool.get(), 4);
        let (path, oldest) = spool.oldest().unwrap();
        assert_eq!(ids(&oldest), ["b1", "b2"]);
        spool.remove(&path, 2);
        assert_eq!(spool.records(), 2);
        // A new process finds what is left, in order.
        let reopened = Spool::open(&dir, 5, metrics).unwrap();
        assert_eq!(reopened.records(), 2);
        assert_eq!(ids(&reopened.oldest().unwrap().1)[0], "c1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn half_written_batches_are_never_replayed() {
        let dir = spool_dir();
        // A crash between write and rename leaves only a .tmp file behind.
        std::fs::write(dir.join("00000000000000000007.tmp"), "{\"prediction_id\":").unwrap();
        let spool = Spool::open(
            &dir,
            10,
            ForwarderMetrics::register(&mut Registry::default()),
        )
        .unwrap();
        assert_eq!(spool.records(), 0);
        assert!(spool.oldest().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
