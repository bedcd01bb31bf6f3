//! A hand-made HTTP/1.1 server on port 0 for the tests: it can do what a real vigil
//! will not on demand — never answer, close the connection, redirect, answer an
//! invalid request 200 — and counts what it was sent, as a readiness signal.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the server does with one request.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// This status with this JSON body.
    Json(u16, String),
    /// 302 to this location.
    Redirect(String),
    /// Closes the connection without a word.
    Close,
    /// Keeps the connection open and says nothing.
    Never,
}

/// A running server.
pub(crate) struct Server {
    /// `http://127.0.0.1:{port}`.
    pub url: String,
    /// Requests received so far (their heads and bodies read), schema reads included.
    pub requests: watch::Receiver<u64>,
}

impl Server {
    /// Until `n` requests have come in.
    pub async fn received(&self, n: u64) {
        let mut requests = self.requests.clone();
        requests
            .wait_for(|r| *r >= n)
            .await
            .expect("server running");
    }
}

/// The schema of model `m`: one feature, two classes.
pub(crate) const SCHEMA: &str =
    r#"{"name": "m", "features": [{"name": "a", "min": 0, "max": 1}], "labels": ["ok", "defect"]}"#;

/// An answer to a prediction, as vigil gives it.
pub(crate) fn prediction() -> Answer {
    Answer::Json(
        200,
        r#"{"prediction_id": "p", "predictions": [{"label": "ok"}]}"#.into(),
    )
}

/// Serves model `m`'s schema (`GET /models`, `GET /models/m`) and `other` for every
/// other request, given its method and path.
pub(crate) async fn serve(other: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> Server {
    serve_all(move |method, path| match (method, path) {
        ("GET", "/models") => Answer::Json(200, r#"{"default_model": "m"}"#.into()),
        ("GET", "/models/m") => Answer::Json(200, SCHEMA.into()),
        _ => other(method, path),
    })
    .await
}

/// Serves `answer` for every request.
pub(crate) async fn serve_all(
    answer: impl Fn(&str, &str) -> Answer + Send + Sync + 'static,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (count, requests) = watch::channel(0u64);
    let (answer, count) = (Arc::new(answer), Arc::new(count));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(connection(stream, answer.clone(), count.clone()));
        }
    });
    Server { url, requests }
}

/// Reads requests off one connection (keep-alive) and answers each.
async fn connection(
    mut stream: TcpStream,
    answer: Arc<impl Fn(&str, &str) -> Answer>,
    count: Arc<watch::Sender<u64>>,
) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let mut words = head.split_whitespace();
        let (method, path) = (
            words.next().unwrap_or_default().to_owned(),
            words.next().unwrap_or_default().to_owned(),
        );
        let length: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        count.send_modify(|n| *n += 1);
        let response = match answer(&method, &path) {
            Answer::Json(status, body) => format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
            Answer::Redirect(to) => {
                format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
            }
            Answer::Close => return,
            Answer::Never => return std::future::pending().await,
        };
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}
