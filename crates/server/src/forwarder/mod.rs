//! The prediction-record forwarder: every prediction becomes a record that travels to
//! the collector in batches, off the request path. Handlers append the record, in
//! vigil's binary encoding ([`packed`]), to a bounded queue without waiting; a task on
//! a thread of its own posts full batches with retry and backoff (as JSON until the
//! collector advertises the binary encoding, then as the filled buffer itself), and
//! while the collector is unreachable writes them to a disk spool under the data dir,
//! which it replays (oldest first) once the collector answers again. `prediction_id`
//! is the collector's idempotency key, so re-sending after a lost acknowledgement or a
//! crash never stores a record twice.

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

use vigil_collector::packed;

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
    /// A partial batch goes out at least this often.
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
            // Each POST costs the sender about 100 µs whatever its size (client, two
            // wake-ups, the response); at 2,000 records that is 0.05 µs a record, and a
            // batch (~430 KB binary, ~710 KB as JSON) is still far below the
            // collector's limits.
            batch_size: 2_000,
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

/// JSON `POST /log` bodies are `{"records":[…]}`; a JSON batch (sent to a collector
/// without the binary encoding, and spooled) is built in that form.
const OPEN: &[u8] = b"{\"records\":[";
const CLOSE: &[u8] = b"]}";

/// Records as JSON (compact objects, which never contain a raw newline), laid out as
/// the `POST /log` body they will be sent as: the opening `{"records":[`, then the
/// records separated by commas; `ends[i]` is where record `i` ends. The request body
/// is this buffer itself; spool files are byte copies.
#[derive(Debug)]
struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for Batch {
    fn default() -> Self {
        Self::in_buffer(Vec::new(), 0)
    }
}

impl Batch {
    /// An empty batch in `data`'s allocation, with room for `records` records of
    /// typical size (about 300 bytes; a larger batch just grows).
    fn in_buffer(mut data: Vec<u8>, records: usize) -> Self {
        data.clear();
        data.reserve(OPEN.len() + records * 320 + CLOSE.len());
        data.extend_from_slice(OPEN);
        Self {
            data,
            ends: Vec::with_capacity(records),
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn push(&mut self, record: &[u8]) {
        if !self.ends.is_empty() {
            self.data.push(b',');
        }
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len());
    }

    /// Serializes `record` straight into the body.
    fn push_json(&mut self, record: &RecordRef<'_>) -> serde_json::Result<()> {
        let mark = self.data.len();
        if !self.ends.is_empty() {
            self.data.push(b',');
        }
        if let Err(e) = serde_json::to_writer(&mut self.data, record) {
            self.data.truncate(mark);
            return Err(e);
        }
        self.ends.push(self.data.len());
        Ok(())
    }

    /// The finished `POST /log` body, sharing this batch's buffer; `pool` gets the
    /// buffer back once the body is dropped (sent, or spooled, and released by the
    /// HTTP client), so batches do not allocate (and fault in) fresh memory.
    fn into_body(mut self, pool: Option<Arc<Queue>>) -> Body {
        self.data.extend_from_slice(CLOSE);
        let ends = std::mem::take(&mut self.ends);
        Body {
            bytes: bytes::Bytes::from_owner(Pooled {
                data: self.data,
                pool,
                packed: false,
            }),
            ends,
        }
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

/// Record `i` of a batch laid out as [`Batch`] describes.
fn records<'a>(data: &'a [u8], ends: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    // Each record after the first starts one past the previous end (the comma).
    let starts = std::iter::once(OPEN.len()).chain(ends.iter().map(|e| e + 1));
    starts.zip(ends.iter().copied()).map(|(a, b)| &data[a..b])
}

/// A batch ready to send: the body (cheap to clone for retries) and where its
/// records end, for the spool.
struct Body {
    bytes: bytes::Bytes,
    ends: Vec<usize>,
}

impl Body {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The body without the records at `refused` (indexes into it).
    fn without(&self, refused: &[usize]) -> Self {
        let refused: std::collections::HashSet<usize> = refused.iter().copied().collect();
        let mut kept = Batch::default();
        for (i, record) in records(&self.bytes, &self.ends).enumerate() {
            if !refused.contains(&i) {
                kept.push(record);
            }
        }
        kept.into_body(None)
    }

    /// One record per line, as spool files hold them.
    fn to_jsonl(&self) -> Vec<u8> {
        let mut text = Vec::with_capacity(self.bytes.len());
        for record in records(&self.bytes, &self.ends) {
            text.extend_from_slice(record);
            text.push(b'\n');
        }
        text
    }
}

/// A body's buffer, handed back to the queue's free list when the last reference
/// to the body goes.
struct Pooled {
    data: Vec<u8>,
    pool: Option<Arc<Queue>>,
    /// A packed batch (back to `free`) rather than a JSON body (back to `bodies`).
    packed: bool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(queue) = &self.pool {
            let mut pending = queue.pending.lock();
            let list = if self.packed {
                &mut pending.free
            } else {
                &mut pending.bodies
            };
            if list.len() < FREE_BUFFERS {
                list.push(std::mem::take(&mut self.data));
            }
        }
    }
}

/// Emptied buffers kept for reuse, of each kind: so a batch does not allocate (and
/// fault in) fresh memory.
const FREE_BUFFERS: usize = 3;

/// A binary batch as handlers fill it ([`packed`]): the format's header, then the
/// records back to back. A full one is the `POST /log` body as it stands.
#[derive(Debug)]
struct Packed {
    data: Vec<u8>,
    len: usize,
}

impl Default for Packed {
    fn default() -> Self {
        Self::in_buffer(Vec::new(), 0)
    }
}

impl Packed {
    /// About 200 bytes a record; a larger batch just grows.
    fn in_buffer(mut data: Vec<u8>, records: usize) -> Self {
        data.clear();
        data.reserve(packed::MAGIC.len() + records * 200);
        data.extend_from_slice(packed::MAGIC);
        Self { data, len: 0 }
    }

    /// The batch as a body to send (more than once if need be); its buffer goes back
    /// to be filled again once the last reference is dropped.
    fn into_body(self, queue: &Arc<Queue>) -> Outgoing {
        Outgoing {
            bytes: bytes::Bytes::from_owner(Pooled {
                data: self.data,
                pool: Some(queue.clone()),
                packed: true,
            }),
            len: self.len,
        }
    }
}

/// A sealed binary batch on its way out.
struct Outgoing {
    bytes: bytes::Bytes,
    len: usize,
}

impl Outgoing {
    /// The packed records, after the header.
    fn records(&self) -> &[u8] {
        &self.bytes[packed::MAGIC.len()..]
    }

    /// The batch without the records at `refused` (indexes into it).
    fn without(&self, refused: &[usize]) -> Self {
        let refused: std::collections::HashSet<usize> = refused.iter().copied().collect();
        let mut data = packed::MAGIC.to_vec();
        let mut len = 0;
        for (i, record) in packed::records(self.records()).enumerate() {
            if let Ok(record) = record
                && !refused.contains(&i)
            {
                packed::write_framed(&mut data, record);
                len += 1;
            }
        }
        Self {
            bytes: data.into(),
            len,
        }
    }
}

/// The handle handlers use. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Forwarder {
    queue: Arc<Queue>,
    metrics: ForwarderMetrics,
}

/// Records waiting to be sent. A handler appends its record, packed, to the filling
/// batch under a short lock (a copy of a couple of hundred bytes); the handler that
/// fills it to `batch_size` seals it and wakes the forwarder, which is the only
/// wake-up (a wake-up per prediction cost more than the prediction). Sealed batches
/// are exactly `batch_size` records: no re-splitting, copying or extra small requests
/// when records arrive between the wake-up and the forwarder.
#[derive(Debug)]
struct Queue {
    pending: Mutex<Pending>,
    full_batch: tokio::sync::Notify,
    capacity: usize,
    batch_size: usize,
}

#[derive(Debug, Default)]
struct Pending {
    filling: Packed,
    /// Full batches, oldest first.
    sealed: std::collections::VecDeque<Packed>,
    /// Buffers of delivered packed batches (sent, spooled or dropped), to fill next.
    free: Vec<Vec<u8>>,
    /// Buffers of delivered JSON bodies, to encode the next one in.
    bodies: Vec<Vec<u8>>,
    /// Records in `filling` and `sealed`.
    records: usize,
}

impl Pending {
    /// Moves the filling batch to the sealed ones and starts an empty one, in a
    /// recycled buffer when there is one.
    fn seal(&mut self, batch_size: usize) {
        let buffer = self.free.pop().unwrap_or_default();
        let full = std::mem::replace(&mut self.filling, Packed::in_buffer(buffer, batch_size));
        self.sealed.push_back(full);
    }

    /// The oldest sealed batch, or with `partial` the filling one if it has records.
    fn next_batch(&mut self, partial: bool, batch_size: usize) -> Option<Packed> {
        if self.sealed.is_empty() && partial && self.filling.len > 0 {
            self.seal(batch_size);
        }
        let batch = self.sealed.pop_front()?;
        self.records -= batch.len;
        Some(batch)
    }
}

/// The running forwarder: a thread of its own with a single-threaded runtime, so
/// its network I/O, timers and wake-ups never share the request workers' event loop
/// (on a small machine, sharing it cost more than the records themselves).
#[derive(Debug)]
pub struct ForwarderTask {
    done: tokio::sync::oneshot::Receiver<u64>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl ForwarderTask {
    /// Stops taking new records and resolves once every queued one is sent or spooled;
    /// returns how many were flushed this way.
    pub async fn finish(self) -> u64 {
        let _ = self.stop.send(());
        self.done.await.unwrap_or(0)
    }
}

impl Forwarder {
    /// Starts the forwarder's thread.
    pub fn start(
        config: ForwarderConfig,
        metrics: ForwarderMetrics,
    ) -> std::io::Result<(Self, ForwarderTask)> {
        std::fs::create_dir_all(&config.spool_dir)?;
        let batch_size = config.batch_size.max(1);
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending {
                filling: Packed::in_buffer(Vec::new(), batch_size),
                ..Pending::default()
            }),
            full_batch: tokio::sync::Notify::new(),
            capacity: config.queue_capacity.max(1),
            batch_size,
        });
        let spool = Spool::open(&config.spool_dir, config.max_spool_records, metrics.clone())?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let url = format!("{}/log", config.collector_url.trim_end_matches('/'))
            .parse()
            .map_err(std::io::Error::other)?;
        let worker = Worker {
            url,
            config,
            metrics: metrics.clone(),
            client,
            spool,
            down: false,
            binary: false,
            features: Vec::new(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (finished, done) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = queue.clone();
        std::thread::Builder::new()
            .name("vigil-forwarder".into())
            .spawn(move || {
                // Sending a batch (or encoding one as JSON) takes a fraction of a
                // millisecond: under SCHED_BATCH it runs beside the request workers
                // instead of preempting one of them when it wakes.
                vigil_telemetry::threads::prefer_batch_scheduling();
                let flushed = runtime.block_on(worker.run(shared, stopped));
                let _ = finished.send(flushed);
            })?;
        Ok((Self { queue, metrics }, ForwarderTask { done, stop }))
    }

    /// Queues a record; never waits. A full queue drops it (counted as `dropped`).
    pub fn submit(&self, record: &RecordRef<'_>) {
        let queue = &*self.queue;
        let mut pending = queue.pending.lock();
        if pending.records >= queue.capacity {
            drop(pending);
            self.metrics.dropped.inc();
            return;
        }
        packed::write(&mut pending.filling.data, record);
        pending.filling.len += 1;
        pending.records += 1;
        let full = pending.filling.len >= queue.batch_size;
        if full {
            pending.seal(queue.batch_size);
        }
        drop(pending);
        if full {
            queue.full_batch.notify_one();
        }
    }
}

struct Worker {
    config: ForwarderConfig,
    /// `{collector_url}/log`.
    url: reqwest::Url,
    metrics: ForwarderMetrics,
    client: reqwest::Client,
    spool: Spool,
    /// The last attempt failed: new batches go straight to the spool until a replay
    /// succeeds.
    down: bool,
    /// The collector has advertised the binary encoding (`Accept-Post`): batches go
    /// as they were packed, without JSON encoding.
    binary: bool,
    /// Scratch for a packed record's features.
    features: Vec<f64>,
}

enum Sent {
    Ok,
    /// The collector refused the batch as invalid: resending it cannot help. `records`
    /// are the refused records' indexes when it named them (422 `invalid_records`).
    Rejected {
        why: String,
        records: Vec<usize>,
    },
    /// 415: the collector does not take this encoding (any more).
    Unsupported,
    Failed(String),
}

impl Worker {
    async fn run(mut self, queue: Arc<Queue>, mut stop: tokio::sync::oneshot::Receiver<()>) -> u64 {
        let mut replay = tokio::time::interval(self.config.backoff.max(Duration::from_millis(50)));
        replay.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A partial batch goes out at least this often, however slow the traffic.
        let mut flush = tokio::time::interval(self.config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            let mut partial = false;
            tokio::select! {
                () = queue.full_batch.notified() => {}
                _ = flush.tick() => partial = true,
                _ = replay.tick(), if self.spool.records() > 0 => {}
                _ = &mut stop, if !stopping => stopping = true,
            }
            // Handlers still running during shutdown can add records until the last
            // take; the server has drained by the time `finish` is called.
            let mut n = 0;
            loop {
                let next = queue
                    .pending
                    .lock()
                    .next_batch(partial || stopping, queue.batch_size);
                let Some(packed) = next else { break };
                n += packed.len as u64;
                self.deliver(&queue, packed.into_body(&queue), !stopping)
                    .await;
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
    /// shutting down), else spools it. It goes as it was packed when the collector
    /// takes the binary encoding; else it is encoded as JSON, once, when first needed.
    async fn deliver(&mut self, queue: &Arc<Queue>, mut batch: Outgoing, may_retry: bool) {
        let mut n = batch.len as u64;
        let mut json: Option<Body> = None;
        let mut pruned = false;
        if !self.down {
            let tries = if may_retry {
                self.config.attempts.max(1)
            } else {
                1
            };
            let mut delay = self.config.backoff;
            let mut attempt = 1;
            while attempt <= tries {
                // (A JSON body holds fewer records only if encoding lost some, counted.)
                let (sent, records) = if self.binary {
                    (
                        self.post(batch.bytes.clone(), packed::CONTENT_TYPE).await,
                        n,
                    )
                } else {
                    let body = json.get_or_insert_with(|| {
                        encode(queue, &batch, &mut self.features, &self.metrics)
                    });
                    let records = body.len() as u64;
                    (self.post(body.bytes.clone(), JSON).await, records)
                };
                match sent {
                    Sent::Ok => {
                        self.metrics.sent.inc_by(records);
                        return;
                    }
                    // A collector replaced by one without the binary encoding: the same
                    // batch goes again as JSON, and so do the next ones.
                    Sent::Unsupported => {
                        tracing::warn!(target: "vigil::forwarder", "collector_refused_binary_batches");
                        self.binary = false;
                    }
                    // One bad record must not cost its neighbours: the batch goes again
                    // without the records the collector named (once; they are counted).
                    Sent::Rejected { why, records: bad }
                        if !pruned
                            && !bad.is_empty()
                            && records == n
                            && bad.iter().all(|&i| i < batch.len) =>
                    {
                        batch = batch.without(&bad);
                        let refused = n - batch.len as u64;
                        tracing::error!(target: "vigil::forwarder", records = refused, resent = batch.len, reason = %why, "prediction_records_rejected");
                        self.metrics.dropped.inc_by(refused);
                        n = batch.len as u64;
                        json = None;
                        pruned = true;
                        if n == 0 {
                            return;
                        }
                    }
                    Sent::Rejected { why, .. } => {
                        tracing::error!(target: "vigil::forwarder", records, reason = %why, "prediction_records_rejected");
                        self.metrics.dropped.inc_by(records);
                        return;
                    }
                    Sent::Failed(why) if attempt < tries => {
                        tracing::warn!(target: "vigil::forwarder", records = n, attempt, reason = %why, "prediction_log_retry");
                        self.metrics.retried.inc_by(n);
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(self.config.max_backoff);
                        attempt += 1;
                    }
                    Sent::Failed(why) => {
                        tracing::warn!(target: "vigil::forwarder", records = n, reason = %why, "collector_unreachable");
                        self.down = true;
                        break;
                    }
                }
            }
        }
        // The spool holds JSON lines, readable by people and by any collector.
        let body = json.unwrap_or_else(|| encode(queue, &batch, &mut self.features, &self.metrics));
        let n = body.len() as u64;
        match self.spool.push(&body) {
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
        let batch = batch.into_body(None);
        match self.post(batch.bytes.clone(), JSON).await {
            Sent::Ok => {
                self.metrics.sent.inc_by(batch.len() as u64);
                self.spool.remove(&path, batch.len() as u64);
                if self.down {
                    tracing::info!(target: "vigil::forwarder", spooled = self.spool.records(), "collector_reachable");
                }
                self.down = false;
            }
            // The named records leave the spool file (counted); the rest stay for the
            // next replay. A refusal that names none drops the file.
            Sent::Rejected { why, records: bad } => {
                let n = batch.len() as u64;
                let kept = (!bad.is_empty() && bad.iter().all(|&i| i < batch.len()))
                    .then(|| batch.without(&bad))
                    .filter(|kept| kept.len() > 0);
                let refused = match kept.map(|k| (k.len(), self.spool.replace(&path, n, &k))) {
                    Some((kept, Ok(()))) => n - kept as u64,
                    Some((_, Err(e))) => {
                        tracing::error!(target: "vigil::forwarder", records = n, error = %e, "spool_write_failed");
                        self.spool.remove(&path, n);
                        n
                    }
                    None => {
                        self.spool.remove(&path, n);
                        n
                    }
                };
                tracing::error!(target: "vigil::forwarder", records = refused, reason = %why, "prediction_records_rejected");
                self.metrics.dropped.inc_by(refused);
            }
            // (Only a binary batch is answered `Unsupported`, and replays are JSON.)
            Sent::Failed(_) | Sent::Unsupported => self.down = true,
        }
    }

    /// One `POST /log`. A JSON one that succeeds tells, in `Accept-Post`, whether the
    /// collector takes the binary encoding.
    async fn post(&mut self, body: bytes::Bytes, content_type: &'static str) -> Sent {
        // The body is a reference to the batch's buffer: a retry sends it again
        // without a copy.
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) => return Sent::Failed(e.to_string()),
        };
        let status = r.status();
        if status.is_success() {
            if !self.binary && accepts_binary(r.headers()) {
                tracing::info!(target: "vigil::forwarder", "collector_accepts_binary_batches");
                self.binary = true;
            }
            return Sent::Ok;
        }
        if status == reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE && content_type != JSON {
            return Sent::Unsupported;
        }
        if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            let body = r.bytes().await.unwrap_or_default();
            let (why, records) = refused_records(&body);
            return Sent::Rejected {
                why: format!("status {status}{why}"),
                records,
            };
        }
        Sent::Failed(format!("status {status}"))
    }
}

/// The records a 422 `invalid_records` answer names (SPEC §5: `details.errors[]` with
/// `index`, `field`, `reason`), and the first one's reason for the log.
fn refused_records(body: &[u8]) -> (String, Vec<usize>) {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (String::new(), Vec::new());
    };
    let errors = answer["error"]["details"]["errors"].as_array();
    let indexes: Option<Vec<usize>> = errors.map(|errors| {
        errors
            .iter()
            .filter_map(|e| e["index"].as_u64().and_then(|i| usize::try_from(i).ok()))
            .collect()
    });
    let first = errors
        .and_then(|e| e.first())
        .map_or_else(String::new, |e| {
            format!(
                ": record {}: {} {}",
                e["index"],
                e["field"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            )
        });
    // Only a complete list can be acted on.
    match indexes {
        Some(i) if i.len() == errors.map_or(0, Vec::len) => (first, i),
        _ => (first, Vec::new()),
    }
}

const JSON: &str = "application/json";

/// Whether a response's `Accept-Post` lists the binary encoding.
fn accepts_binary(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get_all("accept-post")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(packed::is_content_type)
}

/// Turns a binary batch into its JSON body (in a recycled buffer when there is one).
fn encode(
    queue: &Arc<Queue>,
    batch: &Outgoing,
    features: &mut Vec<f64>,
    metrics: &ForwarderMetrics,
) -> Body {
    let buffer = queue.pending.lock().bodies.pop().unwrap_or_default();
    let mut json = Batch::in_buffer(buffer, batch.len);
    let mut failure = None;
    for record in packed::records(batch.records()) {
        let encoded = record
            .map_err(|e| e.to_string())
            .and_then(|bytes| packed::read(bytes, features).map_err(|e| e.to_string()))
            .and_then(|record| json.push_json(&record).map_err(|e| e.to_string()));
        if let Err(e) = encoded {
            failure = Some(e);
        }
    }
    // Only a bug can lose a record here; if one does, it is counted, never silent.
    let lost = batch.len.saturating_sub(json.len());
    if let Some(error) = failure {
        tracing::error!(target: "vigil::forwarder", records = lost, error = %error, "record_not_serializable");
        metrics.dropped.inc_by(lost as u64);
    }
    json.into_body(Some(queue.clone()))
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

    fn push(&mut self, batch: &Body) -> std::io::Result<()> {
        write_segment(&self.dir.join(format!("{:020}.jsonl", self.next)), batch)?;
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

    /// Rewrites the segment at `path` (which held `n` records) to hold `kept` only.
    fn replace(&mut self, path: &Path, n: u64, kept: &Body) -> std::io::Result<()> {
        write_segment(path, kept)?;
        self.set(self.records().saturating_sub(n) + kept.len() as u64);
        Ok(())
    }
}

/// Writes `batch` as the segment `path` (`<sequence>.jsonl`) through `<sequence>.tmp`
/// and a rename, so a crash never leaves half a batch under the segment's name.
fn write_segment(path: &Path, batch: &Body) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, batch.to_jsonl())?;
    std::fs::rename(&tmp, path)
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
        records(&batch.data, &batch.ends)
            .map(|r| {
                serde_json::from_slice::<WireRecord>(r)
                    .unwrap()
                    .prediction_id
            })
            .collect()
    }

    fn body(records: &[WireRecord]) -> Body {
        batch(records).into_body(None)
    }

    #[test]
    fn a_batch_is_the_body_the_collector_parses_and_the_lines_the_spool_holds() {
        let records: Vec<WireRecord> = (0..3).map(|i| record(&format!("p{i}"))).collect();
        let all = batch(&records);
        assert_eq!(ids(&all), ["p0", "p1", "p2"]);
        let body = all.into_body(None);
        let sent = vigil_collector::record::parse_body(&body.bytes, 10).unwrap();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[2].prediction_id, "p2");
        // Spool lines read back as the same batch; a damaged line is skipped.
        let mut lines = body.to_jsonl();
        lines.extend_from_slice(b"{\"prediction_id\":\n");
        assert_eq!(ids(&Batch::from_jsonl(&lines)), ["p0", "p1", "p2"]);
        // An empty batch is still a valid (empty) body.
        let empty = Batch::default().into_body(None);
        assert_eq!(&empty.bytes[..], b"{\"records\":[]}");
    }

    fn queue(capacity: usize, batch_size: usize) -> (Forwarder, Arc<Queue>) {
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending {
                filling: Packed::in_buffer(Vec::new(), batch_size),
                ..Pending::default()
            }),
            full_batch: tokio::sync::Notify::new(),
            capacity,
            batch_size,
        });
        let metrics = ForwarderMetrics::register(&mut Registry::default());
        (
            Forwarder {
                queue: queue.clone(),
                metrics,
            },
            queue,
        )
    }

    #[test]
    fn handlers_seal_batches_of_exactly_batch_size_and_the_queue_bound_drops_and_counts() {
        let (forwarder, queue) = queue(8, 3);
        let records: Vec<WireRecord> = (0..9).map(|i| record(&format!("p{i}"))).collect();
        for r in &records {
            forwarder.submit(&RecordRef::from(r));
        }
        // Eight fit; the ninth is dropped and counted, never half-queued.
        let metrics = &forwarder.metrics;
        assert_eq!(metrics.dropped.get(), 1);
        let mut pending = queue.pending.lock();
        assert_eq!(pending.records, 8);
        assert_eq!(pending.sealed.len(), 2);
        let first = pending.next_batch(false, 3).unwrap();
        let second = pending.next_batch(false, 3).unwrap();
        // The partial batch goes only when asked for (a flush tick or shutdown).
        assert!(pending.next_batch(false, 3).is_none());
        let partial = pending.next_batch(true, 3).unwrap();
        assert!(pending.next_batch(true, 3).is_none());
        assert_eq!(pending.records, 0);
        drop(pending);
        // A sealed buffer is the binary body as it stands, and encodes to the same
        // records as JSON: in order, nothing lost.
        let mut features = Vec::new();
        let mut binary = Vec::new();
        let bodies: Vec<Body> = [first, second, partial]
            .into_iter()
            .map(|b| {
                let out = b.into_body(&queue);
                let records = vigil_collector::record::parse_binary_body(&out.bytes, 10);
                binary.extend(records.unwrap().into_iter().map(|r| r.prediction_id));
                encode(&queue, &out, &mut features, metrics)
            })
            .collect();
        let sent: Vec<String> = bodies
            .iter()
            .flat_map(|b| vigil_collector::record::parse_body(&b.bytes, 10).unwrap())
            .map(|r| r.prediction_id)
            .collect();
        assert_eq!(sent, (0..8).map(|i| format!("p{i}")).collect::<Vec<_>>());
        assert_eq!(binary, sent);
        assert_eq!(metrics.dropped.get(), 1);
        // Buffers come back to be filled again: packed ones once their batch is delivered (here: encoded and let go), bodies once
        // the HTTP client lets go of them.
        assert_eq!(queue.pending.lock().free.len(), 3);
        drop(bodies);
        let mut pending = queue.pending.lock();
        assert_eq!(pending.bodies.len(), 3);
        let capacity = pending.free.last().unwrap().capacity();
        pending.seal(3);
        assert_eq!(pending.free.len(), 2);
        assert!(pending.filling.data.capacity() >= capacity);
    }

    #[test]
    fn refusals_name_records_only_when_the_answer_lists_every_one() {
        let named = br#"{"error":{"code":"invalid_records","details":{"errors":[
            {"index":3,"field":"confidence","reason":"must be between 0 and 1"},
            {"index":0,"reason":"missing field `model`"}]}}}"#;
        let (why, records) = refused_records(named);
        assert_eq!(records, [3, 0]);
        assert_eq!(why, ": record 3: confidence must be between 0 and 1");
        // Not JSON, another error, or an index that is not a number: nothing to prune.
        for other in [
            b"<html>".as_slice(),
            br#"{"error":{"code":"invalid_body","details":null}}"#,
            br#"{"error":{"details":{"errors":[{"index":1},{"index":"x"}]}}}"#,
        ] {
            assert!(refused_records(other).1.is_empty());
        }
        // Pruning keeps the other records, in order, in both forms.
        let (forwarder, queue) = queue(10, 10);
        for i in 0..4 {
            forwarder.submit(&RecordRef::from(&record(&format!("p{i}"))));
        }
        let batch = queue
            .pending
            .lock()
            .next_batch(true, 10)
            .unwrap()
            .into_body(&queue);
        let kept = batch.without(&[1, 3]);
        let ids = |records: Vec<vigil_store::Record>| -> Vec<String> {
            records.into_iter().map(|r| r.prediction_id).collect()
        };
        let binary = vigil_collector::record::parse_binary_body(&kept.bytes, 10).unwrap();
        assert_eq!(ids(binary), ["p0", "p2"]);
        let json = encode(&queue, &batch, &mut Vec::new(), &forwarder.metrics).without(&[0]);
        let json = vigil_collector::record::parse_body(&json.bytes, 10).unwrap();
        assert_eq!(ids(json), ["p1", "p2", "p3"]);
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
        spool.push(&body(&[record("a1"), record("a2")])).unwrap();
        spool.push(&body(&[record("b1"), record("b2")])).unwrap();
        assert_eq!(spool.records(), 4);
        // A third batch overflows the bound of 5: the oldest batch goes.
        spool.push(&body(&[record("c1"), record("c2")])).unwrap();
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
