//! The drift series Prometheus sums across replicas (`model_feature_bin_total`,
//! `model_feature_reference_ratio`) and `model_estimated_accuracy`, through the real
//! router: counts land in the bins the card's edges give, shares are the card's, and
//! the estimate is the window's mean confidence once it holds 100 rows.

use serde_json::json;
use vigil_model::{ModelCard, ModelRegistry};
use vigil_server::router::RouterConfig;
use vigil_server::{AppState, Limits, app};
use vigil_test_support::oneshot::{get, post, send};
use vigil_test_support::{sample, try_sample};

const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];

#[tokio::test]
async fn bins_count_every_instance_and_the_estimate_follows_confidence() {
    let registry = ModelRegistry::bundled().unwrap();
    let card: ModelCard = registry.get("defect-detector").unwrap().card.clone();
    let app = app(
        AppState::new(registry, Limits::default()),
        RouterConfig::default(),
    );
    let predict = || async {
        let r = send(
            &app,
            post("/predict", json!({"instances": vec![GOOD; 50]}).to_string()),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["predictions"][0]["confidence"].as_f64().unwrap()
    };
    predict().await;
    let text = send(&app, get("/metrics")).await.text;
    assert!(
        text.contains("# TYPE model_feature_bin_total counter"),
        "{text}"
    );
    let estimate = r#"model_estimated_accuracy{model="defect-detector"}"#;
    assert!(
        sample(&text, estimate).is_nan(),
        "50 rows are too few for an estimate"
    );
    let confidence = predict().await;
    let text = send(&app, get("/metrics")).await.text;
    assert!((sample(&text, estimate) - confidence).abs() < 1e-6);

    for reference in &card.drift.features {
        let feature = &reference.name;
        let column = card
            .features
            .iter()
            .position(|f| &f.name == feature)
            .unwrap();
        let hit = reference.edges.partition_point(|e| *e <= GOOD[column]);
        let mut total = 0.0;
        for (bin, share) in reference.expected.iter().enumerate() {
            let labels = format!(r#"{{model="defect-detector",feature="{feature}",bin="{bin}"}}"#);
            let count = sample(&text, &format!("model_feature_bin_total{labels}"));
            assert_eq!(
                count,
                if bin == hit { 100.0 } else { 0.0 },
                "{feature} bin {bin}"
            );
            assert_eq!(
                sample(&text, &format!("model_feature_reference_ratio{labels}")),
                *share
            );
            total += share;
        }
        assert!(
            (total - 1.0).abs() < 0.01,
            "{feature}: shares sum to {total}"
        );
        // No bin past the card's.
        let past = format!(
            r#"model_feature_bin_total{{model="defect-detector",feature="{feature}",bin="{}"}}"#,
            reference.expected.len()
        );
        assert_eq!(try_sample(&text, &past), None);
    }
}
