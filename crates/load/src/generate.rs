//! Request bodies: good rows sampled from the training distribution, drifted rows
//! above it, and invalid requests of every kind the server must reject with a 4xx.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;

/// What `GET /models/{name}` says about a model's input, as far as load needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSchema {
    pub name: String,
    pub features: Vec<FeatureSchema>,
    /// A classifier's classes (what a wrong label is drawn from).
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeatureSchema {
    pub name: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub reference: Option<Reference>,
}

/// Interior bin edges and each bin's training share (`edges.len() + 1` bins).
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    pub edges: Vec<f64>,
    pub expected: Vec<f64>,
}

/// The ways a client gets a prediction request wrong; each must be answered 4xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invalid {
    WrongFeatureCount,
    NullFeature,
    StringFeature,
    NanToken,
    OutOfRange,
    EmptyBatch,
    MalformedJson,
    WrongContentType,
    UnknownModel,
}

impl Invalid {
    const ALL: [Invalid; 9] = [
        Invalid::WrongFeatureCount,
        Invalid::NullFeature,
        Invalid::StringFeature,
        Invalid::NanToken,
        Invalid::OutOfRange,
        Invalid::EmptyBatch,
        Invalid::MalformedJson,
        Invalid::WrongContentType,
        Invalid::UnknownModel,
    ];
}

impl std::fmt::Display for Invalid {
    /// In words, for the report's `examples`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalid::WrongFeatureCount => "wrong feature count",
            Invalid::NullFeature => "a null feature",
            Invalid::StringFeature => "a string feature",
            Invalid::NanToken => "a NaN token",
            Invalid::OutOfRange => "an out-of-range value",
            Invalid::EmptyBatch => "an empty batch",
            Invalid::MalformedJson => "malformed JSON",
            Invalid::WrongContentType => "a wrong content type",
            Invalid::UnknownModel => "an unknown model",
        })
    }
}

/// The three kinds of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Good,
    Drifted,
    Invalid(Invalid),
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Good => "good",
            Kind::Drifted => "drifted",
            Kind::Invalid(_) => "invalid",
        }
    }
}

impl std::fmt::Display for Kind {
    /// In words, for the report's `examples`: `invalid request (a NaN token)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Invalid(why) => write!(f, "invalid request ({why})"),
            _ => write!(f, "{} request", self.name()),
        }
    }
}

/// One request to send: path relative to the target, content type and body.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    pub path: String,
    pub content_type: &'static str,
    pub body: String,
}

/// Produces requests in the configured mix; deterministic for a given seed.
pub struct Generator {
    schema: ModelSchema,
    predict_path: String,
    rng: StdRng,
    invalid: f64,
    drifted: f64,
    batch: usize,
    next_invalid: usize,
}

impl Generator {
    /// `explicit_model` sends to `/models/{name}/predict`, otherwise to `/predict`
    /// (the server's default model). `invalid` and `drifted` are shares in [0, 1].
    pub fn new(
        schema: ModelSchema,
        explicit_model: bool,
        invalid: f64,
        drifted: f64,
        batch: usize,
        seed: u64,
    ) -> Self {
        let predict_path = if explicit_model {
            format!("/models/{}/predict", schema.name)
        } else {
            "/predict".to_owned()
        };
        Generator {
            schema,
            predict_path,
            rng: StdRng::seed_from_u64(seed),
            invalid,
            drifted,
            batch: batch.max(1),
            next_invalid: 0,
        }
    }

    pub fn next_request(&mut self) -> Request {
        let roll: f64 = self.rng.random();
        if roll < self.invalid {
            let kind = Invalid::ALL[self.next_invalid % Invalid::ALL.len()];
            self.next_invalid += 1;
            self.invalid_request(kind)
        } else if roll < self.invalid + self.drifted {
            self.rows_request(Kind::Drifted)
        } else {
            self.rows_request(Kind::Good)
        }
    }

    fn rows_request(&mut self, kind: Kind) -> Request {
        let rows: Vec<Vec<f64>> = (0..self.batch).map(|_| self.row(kind)).collect();
        self.json(kind, &rows)
    }

    fn row(&mut self, kind: Kind) -> Vec<f64> {
        let features = std::mem::take(&mut self.schema.features);
        let row = features
            .iter()
            .map(|f| {
                let value = match kind {
                    Kind::Drifted => drifted_value(f, &mut self.rng),
                    _ => good_value(f, &mut self.rng),
                };
                // Four decimals keep bodies short and stay inside the bins.
                (value * 1e4).round() / 1e4
            })
            .collect();
        self.schema.features = features;
        row
    }

    fn json(&self, kind: Kind, rows: &[Vec<f64>]) -> Request {
        Request {
            kind,
            path: self.predict_path.clone(),
            content_type: "application/json",
            body: serde_json::json!({ "instances": rows }).to_string(),
        }
    }

    fn invalid_request(&mut self, invalid: Invalid) -> Request {
        let kind = Kind::Invalid(invalid);
        let mut row = self.row(Kind::Good);
        // The row with its first value replaced by a raw JSON token.
        let with_first = |token: &str| {
            let rest = row[1..].iter().map(|v| format!(",{v}")).collect::<String>();
            format!("[{token}{rest}]")
        };
        let body = match invalid {
            Invalid::WrongFeatureCount => {
                row.pop();
                if row.is_empty() {
                    row.extend([1.0, 2.0]);
                }
                return self.json(kind, &[row]);
            }
            Invalid::OutOfRange => {
                // Past the physical maximum (or minimum) when the card has one,
                // otherwise a value no float32 model input can hold.
                let f = &self.schema.features[0];
                row[0] = match (f.min, f.max) {
                    (_, Some(max)) => max + (max.abs() + 1.0),
                    (Some(min), None) => min - (min.abs() + 1.0),
                    (None, None) => 1e300,
                };
                return self.json(kind, &[row]);
            }
            Invalid::NullFeature => with_first("null"),
            Invalid::StringFeature => with_first("\"high\""),
            Invalid::NanToken => with_first("NaN"),
            Invalid::EmptyBatch => return self.with_body(kind, r#"{"instances": []}"#.into()),
            Invalid::MalformedJson => {
                let text = format!("{{\"instances\": [{}", with_first("0"));
                return self.with_body(kind, text);
            }
            Invalid::WrongContentType => {
                let mut request = self.json(kind, &[row]);
                request.content_type = "text/plain";
                return request;
            }
            Invalid::UnknownModel => {
                let mut request = self.json(kind, &[row]);
                request.path = "/models/no-such-model/predict".into();
                return request;
            }
        };
        self.with_body(kind, format!("{{\"instances\": [{body}]}}"))
    }

    fn with_body(&self, kind: Kind, body: String) -> Request {
        Request {
            kind,
            path: self.predict_path.clone(),
            content_type: "application/json",
            body,
        }
    }
}

/// The span of a feature's reference and its typical bin width.
fn spread(reference: &Reference) -> Option<(f64, f64, f64)> {
    let first = *reference.edges.first()?;
    let last = *reference.edges.last()?;
    let bins = reference.edges.len().saturating_sub(1).max(1) as f64;
    let width = ((last - first) / bins).max(f64::EPSILON);
    Some((first, last, width))
}

fn clamp(f: &FeatureSchema, value: f64) -> f64 {
    value.clamp(f.min.unwrap_or(f64::MIN), f.max.unwrap_or(f64::MAX))
}

/// A value drawn from the training distribution: pick a bin by its share, then a
/// point inside it (the open outer bins get one typical width).
fn good_value(f: &FeatureSchema, rng: &mut StdRng) -> f64 {
    let Some(reference) = &f.reference else {
        let lo = f.min.unwrap_or(0.0);
        let hi = f.max.unwrap_or(lo + 1.0);
        return lo + rng.random::<f64>() * (hi - lo);
    };
    let Some((first, last, width)) = spread(reference) else {
        return clamp(f, 0.0);
    };
    let total: f64 = reference.expected.iter().sum();
    let mut pick = rng.random::<f64>() * total;
    let mut bin = reference.expected.len().saturating_sub(1);
    for (i, share) in reference.expected.iter().enumerate() {
        if pick < *share {
            bin = i;
            break;
        }
        pick -= share;
    }
    let edges = &reference.edges;
    let (lo, hi) = match bin {
        0 => (first - width, first),
        b if b >= edges.len() => (last, last + width),
        b => (edges[b - 1], edges[b]),
    };
    clamp(f, lo + rng.random::<f64>() * (hi - lo))
}

/// A value well above the training distribution (inside the physical range), so
/// every drifted row lands in the top reference bin.
fn drifted_value(f: &FeatureSchema, rng: &mut StdRng) -> f64 {
    match f.reference.as_ref().and_then(spread) {
        Some((first, last, _)) => {
            let span = (last - first).abs().max(1.0);
            clamp(f, last + span * (0.5 + rng.random::<f64>()))
        }
        None => f.max.unwrap_or(1.0) * (0.9 + 0.1 * rng.random::<f64>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> ModelSchema {
        serde_json::from_value(serde_json::json!({
            "name": "m",
            "features": [
                {"name": "a", "min": 0.0, "max": 100.0,
                 "reference": {"edges": [10.0, 20.0, 30.0], "expected": [0.25, 0.25, 0.25, 0.25]}},
                {"name": "b"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn good_rows_follow_the_reference_and_drifted_rows_lie_above_it() {
        let mut g = Generator::new(schema(), true, 0.0, 0.0, 1, 7);
        let mut bins = [0u32; 4];
        for _ in 0..4000 {
            let r = g.next_request();
            assert_eq!(r.kind, Kind::Good);
            assert_eq!(r.path, "/models/m/predict");
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let a = v["instances"][0][0].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&a), "{a}");
            bins[[10.0, 20.0, 30.0].iter().filter(|e| a >= **e).count()] += 1;
        }
        for count in bins {
            assert!((800..1200).contains(&count), "{bins:?}");
        }
        let mut g = Generator::new(schema(), false, 0.0, 1.0, 3, 7);
        for _ in 0..100 {
            let r = g.next_request();
            assert_eq!(r.kind, Kind::Drifted);
            assert_eq!(r.path, "/predict");
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["instances"].as_array().unwrap().len(), 3);
            let a = v["instances"][2][0].as_f64().unwrap();
            assert!((30.0..=100.0).contains(&a), "{a}");
        }
    }

    #[test]
    fn invalid_requests_rotate_through_every_kind() {
        let mut g = Generator::new(schema(), true, 1.0, 0.0, 1, 1);
        let kinds: Vec<Kind> = (0..9).map(|_| g.next_request().kind).collect();
        let expected: Vec<Kind> = Invalid::ALL.iter().map(|i| Kind::Invalid(*i)).collect();
        assert_eq!(kinds, expected);
        let bodies: Vec<Request> = (0..9).map(|_| g.next_request()).collect();
        assert!(bodies[1].body.contains("[null,"), "{}", bodies[1].body);
        assert!(bodies[2].body.contains("[\"high\","), "{}", bodies[2].body);
        assert!(bodies[3].body.contains("[NaN,"), "{}", bodies[3].body);
        assert!(
            bodies[4].body.contains("[201.0,") || bodies[4].body.contains("[201,"),
            "{}",
            bodies[4].body
        );
        assert!(serde_json::from_str::<serde_json::Value>(&bodies[6].body).is_err());
        assert_eq!(bodies[7].content_type, "text/plain");
        assert_eq!(bodies[8].path, "/models/no-such-model/predict");
    }

    #[test]
    fn kinds_read_as_words() {
        assert_eq!(Kind::Good.to_string(), "good request");
        assert_eq!(Kind::Drifted.to_string(), "drifted request");
        assert_eq!(
            Kind::Invalid(Invalid::WrongFeatureCount).to_string(),
            "invalid request (wrong feature count)"
        );
        assert_eq!(
            Kind::Invalid(Invalid::NanToken).to_string(),
            "invalid request (a NaN token)"
        );
    }
}
