//! The listener on port 0 with raw TCP clients: slow heads, idle keep-alive
//! connections, stalled bodies and connections beyond the cap are closed and counted,
//! while well-behaved clients keep being answered; shutdown drains. Lower bounds on
//! timing are exact (a timeout never fires early); upper bounds are generous, for a
//! loaded machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use vigil_listener::{
    CloseReason, ConnectionMetrics, ListenerConfig, MalformedAnswer, Placement, serve,
};
use vigil_test_support::until;

/// How long a test waits for something that should happen much sooner.
const PATIENCE: Duration = Duration::from_secs(20);
/// Slack on top of a timeout before a close counts as late: far more than scheduling
/// delays on a busy machine, far less than the 10 s default header timeout, so a
/// deadline that is only noticed when some other timer fires is caught.
const SLACK: Duration = Duration::from_secs(4);

/// The test's answer to a request hyper cannot parse: names the status hyper chose.
#[derive(Debug)]
struct Replaced;

impl MalformedAnswer for Replaced {
    fn answer(&self, status: http::StatusCode, _peer: std::net::SocketAddr) -> Bytes {
        let body = format!("replaced {}", status.as_u16());
        Bytes::from(format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            body.len()
        ))
    }
}

struct Server {
    addr: std::net::SocketAddr,
    metrics: ConnectionMetrics,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    /// Tells when `POST /upload` has started and is about to read its body.
    uploads: mpsc::UnboundedReceiver<()>,
}

async fn start(config: ListenerConfig) -> Server {
    let mut registry = Registry::default();
    let metrics = ConnectionMetrics::register(&mut registry);
    let registry = Arc::new(registry);
    let (upload_tx, uploads) = mpsc::unbounded_channel();
    let router = Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route(
            "/thread",
            get(|| async { std::thread::current().name().unwrap_or("").to_owned() }),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("a handler that panics");
                }
                ""
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let mut text = String::new();
                    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
                    text
                }
            }),
        )
        .route(
            "/predict",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/upload",
            post(move |req: axum::extract::Request| {
                let started = upload_tx.clone();
                async move {
                    let _ = started.send(());
                    let body = http_body_util::BodyExt::collect(req.into_body())
                        .await
                        .map(|b| b.to_bytes().len())
                        .unwrap_or(0);
                    body.to_string()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(
        listener,
        router,
        config,
        Placement::Threads { name: "test-conn" },
        metrics.clone(),
        Arc::new(Replaced),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        metrics,
        stop: Some(stop),
        done,
        uploads,
    }
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

/// Reads one response (the test routes always send `Content-Length`).
async fn read_response(s: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed in the middle of a response body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head[9..12].parse().unwrap();
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            return Response { status, head, body };
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn get_on(s: &mut TcpStream, path: &str) -> Response {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_response(s).await
}

async fn predict_on(s: &mut TcpStream) -> Response {
    s.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    read_response(s).await
}

/// Waits until the server closes `s` (EOF or reset, no bytes first) and returns when.
async fn closed_by_server(s: &mut TcpStream) -> Instant {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(PATIENCE, s.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Instant::now(),
        Ok(Ok(_)) => panic!("the server sent bytes instead of closing"),
        Err(_) => panic!("the connection is still open after {PATIENCE:?}"),
    }
}

/// Waits until `n` connections are counted closed for `reason`: a connection's task
/// counts its close after the socket is gone, on its own thread, so a client that has
/// seen the close may look a moment before the count.
async fn counted(m: &ConnectionMetrics, reason: CloseReason, n: u64) {
    until(
        PATIENCE,
        &format!("never: {n} connections closed for {reason:?}"),
        || m.closed(reason) == n,
    )
    .await;
    // No more than that either, a moment later.
    tokio::task::yield_now().await;
    assert_eq!(m.closed(reason), n);
}

fn config() -> ListenerConfig {
    ListenerConfig::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_are_closed_after_the_header_timeout_while_others_are_served() {
    const SLOW: usize = 300;
    let header_timeout = Duration::from_millis(300);
    let server = start(ListenerConfig {
        header_timeout,
        ..config()
    })
    .await;
    let addr = server.addr;

    // A well-behaved client on one keep-alive connection, for as long as the slow
    // heads are open.
    let (done_tx, mut done_rx) = oneshot::channel::<()>();
    let client = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut answered = 0;
        while done_rx.try_recv().is_err() {
            let r = predict_on(&mut s).await;
            assert_eq!((r.status, r.body.as_str()), (200, "5"));
            answered += 1;
        }
        (answered, s)
    });

    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        // Before connecting: the server may accept (and start timing) before
        // `connect` returns here.
        let opened = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let closed = closed_by_server(&mut s).await;
            closed - opened
        }));
    }
    for held in slow {
        let held = held.await.unwrap();
        assert!(
            held >= header_timeout && held < header_timeout + SLACK,
            "closed after {held:?}"
        );
    }
    let _ = done_tx.send(());
    let (answered, normal) = client.await.unwrap();
    assert!(answered > 0);

    let m = &server.metrics;
    counted(m, CloseReason::header_timeout, SLOW as u64).await;
    assert_eq!(m.closed(CloseReason::error), 0);
    assert_eq!(m.closed(CloseReason::limit), 0);
    // Only the well-behaved connection is left; once it goes, none.
    until(
        PATIENCE,
        "never: only the normal client's connection open",
        || m.open() == 1,
    )
    .await;
    drop(normal);
    until(PATIENCE, "never: no connection open", || m.open() == 0).await;
    assert_eq!(m.closed(CloseReason::normal), 1);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lasts_the_idle_timeout_not_the_header_timeout() {
    let idle_timeout = Duration::from_millis(600);
    let server = start(ListenerConfig {
        header_timeout: Duration::from_millis(100),
        idle_timeout,
        ..config()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // Before asking: the server's idle time starts before the answer is read here.
    let asked = Instant::now();
    assert_eq!(get_on(&mut s, "/health/live").await.status, 200);
    let closed = closed_by_server(&mut s).await;
    let held = closed - asked;
    assert!(
        held >= idle_timeout && held < idle_timeout + SLACK,
        "closed after {held:?}"
    );
    let m = &server.metrics;
    counted(m, CloseReason::idle_timeout, 1).await;
    assert_eq!(m.closed(CloseReason::header_timeout), 0);
    until(PATIENCE, "never: no connection open", || m.open() == 0).await;
}

#[tokio::test]
async fn a_stalled_body_is_closed_after_the_body_timeout_and_a_trickled_one_is_not() {
    let body_timeout = Duration::from_millis(500);
    let server = start(ListenerConfig {
        body_timeout,
        ..config()
    })
    .await;

    // Ten bytes of a hundred, then nothing.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    let sent = Instant::now();
    stalled
        .write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let closed = closed_by_server(&mut stalled).await;
    let held = closed - sent;
    assert!(
        held >= body_timeout && held < body_timeout + SLACK,
        "closed after {held:?}"
    );
    counted(&server.metrics, CloseReason::body_timeout, 1).await;

    // The timeout is per chunk: a body that keeps coming may take longer in total.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    trickle
        .write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    for digit in b"0123456789" {
        // The pace of this client is what is under test, not a wait for readiness.
        tokio::time::sleep(Duration::from_millis(100)).await;
        trickle.write_all(&[*digit]).await.unwrap();
    }
    let r = read_response(&mut trickle).await;
    assert_eq!((r.status, r.body.as_str()), (200, "10"));
    assert!(started.elapsed() > body_timeout);
    counted(&server.metrics, CloseReason::body_timeout, 1).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_counted_while_open_ones_are_served() {
    const CAP: usize = 4;
    let server = start(ListenerConfig {
        max_connections: CAP,
        ..config()
    })
    .await;
    let m = &server.metrics;
    let mut open = Vec::new();
    for _ in 0..CAP {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        assert_eq!(get_on(&mut s, "/health/live").await.status, 200);
        open.push(s);
    }
    assert_eq!(m.open(), CAP as i64);

    for refused in 1..=3u64 {
        // The kernel completes the handshake; the server accepts and closes at once.
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let _ = s
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        closed_by_server(&mut s).await;
        assert_eq!(m.closed(CloseReason::limit), refused);
    }
    assert_eq!(m.open(), CAP as i64);

    // Every connection already open is still answered, probes and scrapes included.
    for s in &mut open {
        assert_eq!(get_on(s, "/health/live").await.body, "ok");
        let r = predict_on(s).await;
        assert_eq!(r.status, 200);
    }
    let scrape = get_on(&mut open[0], "/metrics").await.body;
    assert!(
        scrape.contains("http_connections_closed_total{reason=\"limit\"} 3\n"),
        "{scrape}"
    );
    assert!(
        scrape.contains(&format!("http_connections_open {CAP}\n")),
        "{scrape}"
    );

    // A freed slot is taken by the next client.
    drop(open.pop());
    until(PATIENCE, "never: a slot is free", || {
        m.open() == CAP as i64 - 1
    })
    .await;
    let mut next = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get_on(&mut next, "/health/live").await.status, 200);
    assert_eq!(m.closed(CloseReason::limit), 3);
}

#[tokio::test]
async fn each_connection_stays_on_one_connection_thread_and_new_ones_go_to_the_least_loaded() {
    let server = start(ListenerConfig {
        threads: 2,
        ..config()
    })
    .await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    let mut seen = Vec::new();
    for s in [&mut first, &mut second] {
        let thread = get_on(s, "/thread").await.body;
        assert!(thread.starts_with("test-conn-"), "{thread}");
        for _ in 0..20 {
            assert_eq!(get_on(s, "/thread").await.body, thread);
        }
        seen.push(thread);
    }
    assert_ne!(seen[0], seen[1], "two open connections share a thread");

    // A connection that closes frees its place: the next goes where it was.
    drop(first);
    counted(&server.metrics, CloseReason::normal, 1).await;
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get_on(&mut third, "/thread").await.body, seen[0]);
}

#[tokio::test]
async fn one_connection_at_a_time_goes_to_each_thread_in_turn() {
    let server = start(ListenerConfig {
        threads: 2,
        ..config()
    })
    .await;
    let mut seen = Vec::new();
    for closed in 1..=4 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        seen.push(get_on(&mut s, "/thread").await.body);
        drop(s);
        counted(&server.metrics, CloseReason::normal, closed).await;
    }
    // Every thread idle each time: the tie goes round, not always to the first.
    assert_ne!(seen[0], seen[1], "{seen:?}");
    assert_eq!((&seen[0], &seen[1]), (&seen[2], &seen[3]), "{seen:?}");
}

#[tokio::test]
async fn a_panicking_handler_costs_its_connection_not_its_thread() {
    let server = start(ListenerConfig {
        threads: 1,
        ..config()
    })
    .await;
    let mut other = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get_on(&mut other, "/health/live").await.status, 200);
    let mut doomed = TcpStream::connect(server.addr).await.unwrap();
    doomed
        .write_all(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    closed_by_server(&mut doomed).await;
    counted(&server.metrics, CloseReason::error, 1).await;
    // The one thread still serves the connection it had and new ones.
    assert_eq!(get_on(&mut other, "/health/live").await.status, 200);
    let mut next = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get_on(&mut next, "/health/live").await.status, 200);
    assert_eq!(server.metrics.open(), 2);
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_progress_and_closes_idle_connections() {
    let mut server = start(config()).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get_on(&mut idle, "/health/live").await.status, 200);
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    busy.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        .await
        .unwrap();
    server.uploads.recv().await.unwrap();

    let _ = server.stop.take().unwrap().send(());
    closed_by_server(&mut idle).await;
    // The idle connection is closed only after the listener is gone.
    assert!(TcpStream::connect(server.addr).await.is_err());

    busy.write_all(b"56789").await.unwrap();
    let r = read_response(&mut busy).await;
    assert_eq!((r.status, r.body.as_str()), (200, "10"));
    assert!(
        r.head.to_ascii_lowercase().contains("connection: close"),
        "{}",
        r.head
    );
    closed_by_server(&mut busy).await;

    tokio::time::timeout(PATIENCE, server.done)
        .await
        .expect("serve returns once every connection has closed")
        .unwrap();
    assert_eq!(server.metrics.closed(CloseReason::normal), 2);
    assert_eq!(server.metrics.open(), 0);
}

#[tokio::test]
async fn a_request_hyper_cannot_parse_gets_the_services_answer_and_others_are_untouched() {
    let server = start(config()).await;
    let heads: [(Vec<u8>, u16); 4] = [
        (
            b"GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
            400,
        ),
        (b"BREW\x01 / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
                "X-A: b\r\n".repeat(500)
            )
            .into_bytes(),
            431,
        ),
    ];
    for (head, status) in heads {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(&head).await.unwrap();
        let r = read_response(&mut s).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (status, &*format!("replaced {status}"))
        );
        closed_by_server(&mut s).await;
    }
    // On a keep-alive connection: answers of the router stay as they are, the 404
    // included; a head that does not parse after them gets the replacement.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let missing = get_on(&mut s, "/nowhere").await;
    assert_eq!(missing.status, 404);
    assert!(!missing.body.contains("replaced"), "{}", missing.body);
    assert_eq!(get_on(&mut s, "/health/live").await.body, "ok");
    assert_eq!(predict_on(&mut s).await.body, "5");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.body, "replaced 400");
    closed_by_server(&mut s).await;
}
