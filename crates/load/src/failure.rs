//! Why a request got no answer, in words. reqwest's own message is the same for
//! every transport failure ("error sending request for url (…)"); the cause a person
//! can act on — connection refused, timed out, connection closed — is at the end of
//! its source chain.

use std::error::Error;
use std::time::Duration;

/// The root cause of a failed request: its timeout, or the last error of its source
/// chain. `timeout` is the client's, for the message.
pub(crate) fn why(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s (timed out)", timeout.as_secs_f64());
    }
    let mut cause: &dyn Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        // A port that was free a moment ago: nothing listens there.
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap_err();
        let why = why(&e, Duration::from_secs(30));
        assert!(why.contains("Connection refused"), "{why}");
        assert!(!why.contains("error sending request"), "{why}");
    }

    #[tokio::test]
    async fn a_timeout_names_the_bound() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        // Accepted (by the backlog) and never answered.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        let e = client.get(url).send().await.unwrap_err();
        assert_eq!(
            why(&e, Duration::from_millis(50)),
            "no answer within 0.05 s (timed out)"
        );
        drop(listener);
    }
}
