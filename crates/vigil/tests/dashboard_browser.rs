//! The dashboard in a real browser: Debian's headless Chromium, driven over the
//! DevTools protocol, against `vigil up` on port 0. It signs in (a wrong key first),
//! waits until the charts and numbers show traffic the test sent and an incident the
//! collector opened, checks that a request id, an alert summary and class labels made
//! of HTML are shown as text and never become markup (model names cannot hold HTML:
//! they are restricted to `A-Za-z0-9._-`), signs out, and asserts that nothing was
//! logged to the console and no request left 127.0.0.1.
//! It takes the screenshot the README shows, and saves it to `docs/img/dashboard.png`
//! when `VIGIL_UPDATE_SCREENSHOT` is set.
//!
//! `scripts/test` installs `chromium` (`scripts/install-test-deps`); the test fails,
//! never skips, without it.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Network, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{Value, json};
use vigil_model::bundled::MODELS;
use vigil_test_support::{TempDir, Vigil, multipart};

const CHROMIUM: &str = "/usr/bin/chromium";
const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
/// A request id the client chose: printable ASCII, so vigil keeps it, and HTML.
const HOSTILE_ID: &str = "<img src=x id=pwned onerror=alert(1)>";
/// Class labels may hold any printable text but quotes and backslashes.
const HOSTILE_LABELS: [&str; 2] = ["<img src=x id=pwned2>", "<b>defect</b>"];

/// What the page did that the test checks at the end.
#[derive(Default, Debug)]
struct Seen {
    console_errors: Vec<String>,
    requests: Vec<String>,
}

fn text(tab: &Tab, id: &str) -> String {
    let value = tab
        .evaluate(
            &format!("document.getElementById({id:?}).textContent"),
            false,
        )
        .unwrap()
        .value;
    value
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn eval_bool(tab: &Tab, expression: &str) -> bool {
    tab.evaluate(expression, false)
        .unwrap()
        .value
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Waits for the page itself to show something (the readiness signal is the page).
fn wait_until(tab: &Tab, what: &str, expression: &str, within: Duration) {
    vigil_test_support::eventually_blocking(within, || {
        if eval_bool(tab, expression) {
            Ok(())
        } else {
            Err(format!("the page never showed {what}"))
        }
    })
}

fn visible(id: &str) -> String {
    format!("!document.getElementById({id:?}).hidden")
}

/// Types `key` into the form and submits it with the button, or with the keyboard
/// alone (the page opens with the key field focused; Enter submits).
fn sign_in(tab: &Tab, key: &str, by_keyboard: bool) {
    if by_keyboard {
        assert!(eval_bool(tab, "document.activeElement.id === 'api-key'"));
        tab.type_str(key).unwrap().press_key("Enter").unwrap();
        return;
    }
    let input = tab.wait_for_element("#api-key").unwrap();
    input.click().unwrap();
    tab.type_str(key).unwrap();
    tab.find_element("#sign-in-form button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_shows_live_traffic_escapes_html_and_signs_out() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/install-test-deps"
    );
    let dir = TempDir::new("dashboard-browser");
    let vigil = Vigil::start_command("up", &["--data-dir", dir.path().to_str().unwrap()], &[]);
    let key = vigil.admin_key();
    let inference = vigil.address_of("inference");
    let base = format!("http://{inference}");
    let http = reqwest::Client::new();

    // A refused admin call whose request id is HTML: a WARN line the page will list.
    let refused = http
        .get(format!("{base}/admin/performance"))
        .header("x-request-id", HOSTILE_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-request-id"], HOSTILE_ID);

    // A model whose class labels are HTML, uploaded like any other.
    let (_, onnx, card) = MODELS[0];
    let card = card
        .replacen("name = \"defect-detector\"", "name = \"html-labels\"", 1)
        .replacen(
            "labels = [\"ok\", \"defect\"]",
            &format!(
                "labels = [\"{}\", \"{}\"]",
                HOSTILE_LABELS[0], HOSTILE_LABELS[1]
            ),
            1,
        )
        .replacen(
            "defect_labels = [\"defect\"]",
            &format!("defect_labels = [\"{}\"]", HOSTILE_LABELS[1]),
            1,
        );
    assert!(card.contains(HOSTILE_LABELS[0]), "{card}");
    let uploaded = http
        .post(format!("{base}/admin/models/html-labels"))
        .bearer_auth(&key)
        .header("content-type", multipart::content_type())
        .body(multipart::form(&[
            ("onnx", onnx),
            ("card", card.as_bytes()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201, "{}", uploaded.text().await.unwrap());

    // An incident, opened the way Alertmanager opens one.
    let alert = json!({
        "version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "vigil-collector", "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
        "commonAnnotations": {"summary": "High error rate"}, "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing", "labels": {"alertname": "HighErrorRate", "severity": "critical"},
            "annotations": {"summary": "High error rate on <i>defect-detector</i>"},
            "startsAt": "2026-12-01T21:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": "d45b0a2d1e5f6071"
        }]
    });
    let opened = http
        .post(format!("http://{}/alerts", vigil.address_of("collector")))
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert!(opened.status().is_success(), "{}", opened.status());

    let profile = TempDir::new("chromium-profile");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let browser_seen = seen.clone();
    let base_for_browser = base.clone();
    let key_for_browser = key.clone();
    let traffic_base = base.clone();
    // The browser is driven synchronously; traffic comes from this runtime meanwhile.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let browser = tokio::task::spawn_blocking(move || {
        drive(
            &base_for_browser,
            &key_for_browser,
            profile.path(),
            browser_seen,
            ready_tx,
        )
    });

    ready_rx.await.expect("the browser signed in");
    // Steady traffic (50 requests a second) until the browser is done, so every
    // sample the page shows has some.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector_base = format!("http://{}", vigil.address_of("collector"));
    let traffic = tokio::spawn({
        let done = done.clone();
        let http = http.clone();
        async move {
            let mut pace = tokio::time::interval(Duration::from_millis(20));
            let mut sent = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                pace.tick().await;
                let answer = http
                    .post(format!("{traffic_base}/predict"))
                    .json(&json!({"features": GOOD}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200);
                let answer: Value = answer.json().await.unwrap();
                let label = json!({
                    "prediction_id": answer["prediction_id"],
                    "label": answer["predictions"][0]["label"],
                });
                let taken = http
                    .post(format!("{collector_base}/feedback"))
                    .json(&label)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(taken.status(), 202);
                sent += 1;
            }
            sent
        }
    });
    browser.await.unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(traffic.await.unwrap() > 0);

    let seen = seen.lock().unwrap();
    assert!(
        seen.console_errors.is_empty(),
        "console errors: {:?}",
        seen.console_errors
    );
    assert!(!seen.requests.is_empty());
    let local = format!("{base}/");
    let elsewhere: Vec<&String> = seen
        .requests
        .iter()
        .filter(|u| !u.starts_with(&local))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "requests left 127.0.0.1: {elsewhere:?}"
    );
    // The key went to the server once, in a body: never in a URL, never in a log line.
    assert!(!seen.requests.iter().any(|u| u.contains(&key)));
    let (_, lines) = vigil.stop();
    assert!(!lines.iter().any(|l| l.to_string().contains(&key)));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "audit" && l["action"] == "sign_in"),
        "sign-in is audited"
    );
}

fn drive(
    base: &str,
    key: &str,
    profile: &std::path::Path,
    seen: Arc<Mutex<Seen>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let args: Vec<&OsStr> = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let browser = Browser::new(
        LaunchOptions::default_builder()
            .path(Some(CHROMIUM.into()))
            .headless(true)
            .sandbox(false)
            .window_size(Some((1280, 1800)))
            .user_data_dir(Some(profile.to_path_buf()))
            .args(args)
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
    )
    .expect("chromium starts");
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(30));
    tab.enable_runtime().unwrap();
    tab.enable_log().unwrap();
    tab.call_method(Network::Enable {
        max_total_buffer_size: None,
        max_resource_buffer_size: None,
        max_post_data_size: None,
        report_direct_socket_traffic: None,
        enable_durable_messages: None,
    })
    .unwrap();
    let listener_seen = seen.clone();
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let mut seen = listener_seen.lock().unwrap();
        match event {
            Event::NetworkRequestWillBeSent(e) => seen.requests.push(e.params.request.url.clone()),
            Event::RuntimeExceptionThrown(e) => seen
                .console_errors
                .push(format!("exception: {:?}", e.params.exception_details.text)),
            Event::RuntimeConsoleAPICalled(e) => {
                let kind = format!("{:?}", e.params.Type);
                if kind == "Error" || kind == "Assert" || kind == "Warning" {
                    seen.console_errors
                        .push(format!("console {kind}: {:?}", e.params.args));
                }
            }
            Event::LogEntryAdded(e) => {
                let level = format!("{:?}", e.params.entry.level);
                // The one refusal the test asks for (the wrong key) is logged by the
                // browser as a failed load; anything else is a fault.
                let wrong_key = e
                    .params
                    .entry
                    .url
                    .as_deref()
                    .is_some_and(|u| u.ends_with("/dashboard/session"))
                    && e.params.entry.text.contains("401");
                if (level == "Error" || level == "Warning") && !wrong_key {
                    seen.console_errors.push(format!(
                        "log {level}: {} ({:?})",
                        e.params.entry.text, e.params.entry.url
                    ));
                }
            }
            _ => {}
        }
    }))
    .unwrap();

    // `/` redirects to the dashboard, which asks to sign in.
    tab.navigate_to(&format!("{base}/"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    assert!(tab.get_url().ends_with("/dashboard"), "{}", tab.get_url());
    wait_until(
        &tab,
        "the sign-in form",
        &visible("sign-in"),
        Duration::from_secs(15),
    );

    // A wrong key: a clear message, no session, no board.
    sign_in(&tab, "vgl_not-a-key", false);
    wait_until(
        &tab,
        "the wrong-key message",
        "document.getElementById('sign-in-error').textContent.length > 0",
        Duration::from_secs(15),
    );
    assert!(
        text(&tab, "sign-in-error").contains("not accepted"),
        "{}",
        text(&tab, "sign-in-error")
    );
    assert!(tab.get_cookies().unwrap().is_empty(), "no session cookie");
    assert!(eval_bool(&tab, "document.getElementById('board').hidden"));

    // The admin key: the board shows, with an HttpOnly session cookie scripts cannot read.
    sign_in(&tab, key, true);
    wait_until(
        &tab,
        "the board",
        &visible("board"),
        Duration::from_secs(15),
    );
    let cookies = tab.get_cookies().unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].http_only && cookies[0].path == "/dashboard");
    assert!(eval_bool(&tab, "document.cookie === ''"));
    assert!(eval_bool(
        &tab,
        "document.getElementById('api-key').value === ''"
    ));
    ready.send(()).unwrap();

    // The traffic reaches the numbers and the charts within a sample and a poll.
    wait_until(
        &tab,
        "the predictions",
        "parseFloat(document.getElementById('n-predictions').textContent) > 0",
        Duration::from_secs(30),
    );
    wait_until(
        &tab,
        "the request rate",
        "parseFloat(document.getElementById('n-rate').textContent) > 0",
        Duration::from_secs(30),
    );
    assert!(eval_bool(
        &tab,
        "document.querySelectorAll('#board .chart canvas').length >= 9"
    ));
    assert!(eval_bool(
        &tab,
        "document.querySelector('#models tbody tr td').textContent.startsWith('defect-detector')"
    ));
    assert!(
        text(&tab, "n-classes").contains("ok"),
        "{}",
        text(&tab, "n-classes")
    );
    // Every answer is labelled right at the collector: measured accuracy 1, beside
    // the card's figure and the estimate from confidences.
    // (The estimate needs 100 predictions; labels may be measured before that.)
    wait_until(
        &tab,
        "the measured accuracy beside the estimate",
        "(() => { const q = document.getElementById('quality').textContent; \
         return q.includes('Measured from ground truth (last hour): defect-detector 1.000 (card says 0.92') \
         && q.includes('Estimated from confidence (last 1,000 predictions, before any label): defect-detector 0.'); })()",
        Duration::from_secs(30),
    );
    // The HTML request id is in the events table as text, and no element came of it.
    assert!(
        text(&tab, "events").contains(HOSTILE_ID),
        "{}",
        text(&tab, "events")
    );
    assert!(eval_bool(
        &tab,
        "document.getElementById('pwned') === null && document.querySelectorAll('#events img').length === 0"
    ));

    // The incident the collector opened, with its summary as text.
    wait_until(
        &tab,
        "the open incident",
        "document.getElementById('incidents').textContent.includes('HighErrorRate')",
        Duration::from_secs(30),
    );
    assert!(text(&tab, "incidents").contains("<i>defect-detector</i>"));
    assert!(eval_bool(
        &tab,
        "document.querySelectorAll('#incidents i').length === 0"
    ));

    // HTML class labels: in the table, the legend and the numbers, as text only.
    assert!(text(&tab, "models").contains("html-labels"));
    assert!(eval_bool(
        &tab,
        "(() => { const p = document.getElementById('model-pick'); p.value = 'html-labels'; \
         p.dispatchEvent(new Event('change')); return p.value === 'html-labels'; })()"
    ));
    wait_until(
        &tab,
        "the HTML labels as text",
        &format!(
            "document.getElementById('c-classes').textContent.includes({:?})",
            HOSTILE_LABELS[0]
        ),
        Duration::from_secs(15),
    );
    assert!(eval_bool(
        &tab,
        "document.getElementById('pwned2') === null && document.querySelectorAll('#board img, #board b').length === 0"
    ));
    // Back to the default model for the screenshot.
    assert!(eval_bool(
        &tab,
        "(() => { const p = document.getElementById('model-pick'); p.value = 'defect-detector'; \
         p.dispatchEvent(new Event('change')); return true; })()"
    ));
    let png = tab
        .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a screenshot of {} bytes",
        png.len()
    );
    // The README's image changes only when asked: rewriting it on every run left a
    // modified binary in every working tree the suite ran in.
    if std::env::var_os("VIGIL_UPDATE_SCREENSHOT").is_some() {
        let shot =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img/dashboard.png");
        std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
        std::fs::write(&shot, png).unwrap();
    }

    // On a phone's width the page has no sideways scroll (wide tables scroll inside
    // their own box) and the charts fit.
    tab.call_method(Emulation::SetDeviceMetricsOverride {
        width: 390,
        height: 844,
        device_scale_factor: 2.0,
        mobile: true,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })
    .unwrap();
    wait_until(
        &tab,
        "the phone layout",
        "window.innerWidth === 390 && document.documentElement.scrollWidth <= 390 && \
         [...document.querySelectorAll('#board .chart canvas')].every(c => c.getBoundingClientRect().right <= 390)",
        Duration::from_secs(15),
    );

    // Sign out: the form is back, the cookie is gone, and the data route refuses.
    tab.find_element("#sign-out").unwrap().click().unwrap();
    wait_until(
        &tab,
        "the sign-in form again",
        &visible("sign-in"),
        Duration::from_secs(15),
    );
    assert!(tab.get_cookies().unwrap().is_empty());
    let signed_in = tab
        .evaluate(
            "fetch('/dashboard/session').then(r => r.json()).then(s => s.signed_in)",
            true,
        )
        .unwrap()
        .value
        .unwrap();
    assert_eq!(signed_in, false);
}
