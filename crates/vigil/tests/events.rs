//! `GET /admin/events` through the real binary: the warnings and errors the process
//! logged, newest first, each with its request id; nothing below WARN; admin key only.

use serde_json::Value;
use vigil_test_support::{TempDir, Vigil, get_json_with_key};

#[tokio::test]
async fn recent_warnings_carry_their_request_ids() {
    let dir = TempDir::new("events");
    let vigil = Vigil::start_command("up", &["--data-dir", dir.path().to_str().unwrap()], &[]);
    let key = vigil.admin_key();
    let base = format!("http://{}", vigil.address_of("inference"));
    let http = reqwest::Client::new();
    // A refused admin request: an `auth_failed` WARN line and a `denied` audit line.
    let refused = http
        .get(format!("{base}/admin/anything"))
        .header("x-request-id", "evt-refused-1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let no_key = http
        .get(format!("{base}/admin/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);

    let events = get_json_with_key(&http, format!("{base}/admin/events"), &key).await;
    let events = events["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["level"] == "WARN" || e["level"] == "ERROR"),
        "{events:?}"
    );
    // Newest first: the second refusal (no key on /admin/events) before the first.
    let refusals: Vec<&Value> = events
        .iter()
        .filter(|e| e["message"] == "auth_failed")
        .collect();
    assert_eq!(refusals.len(), 2, "{events:?}");
    assert_eq!(refusals[1]["request_id"], "evt-refused-1");
    assert_eq!(refusals[1]["reason"], "missing");
    assert_ne!(refusals[0]["request_id"], "evt-refused-1");
    assert!(!events.iter().any(|e| e.to_string().contains(&key)));
    vigil.stop();
}
