//! Ground truth: labels joined with their predictions (`feedback`), and labels whose
//! prediction has not been stored yet (`pending_feedback`). A prediction has at most
//! one label: the first one stored wins, later ones are duplicates.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Row};

use crate::{BeginWrite, Store, StoreError};

/// Rows per statement: 10 binds each stays well under SQLite's bind limit.
const CHUNK: usize = 1000;

/// What the label says was true.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// A classifier's true class.
    Label(String),
    /// A regressor's true value.
    Value(f64),
}

impl Truth {
    /// A classifier's true class.
    pub fn label(&self) -> Option<&str> {
        match self {
            Truth::Label(l) => Some(l),
            Truth::Value(_) => None,
        }
    }

    /// A regressor's true value.
    pub fn value(&self) -> Option<f64> {
        match self {
            Truth::Label(_) => None,
            Truth::Value(v) => Some(*v),
        }
    }

    fn from_columns(label: Option<String>, value: Option<f64>) -> Self {
        match (label, value) {
            (Some(l), _) => Truth::Label(l),
            (None, v) => Truth::Value(v.unwrap_or(f64::NAN)),
        }
    }
}

/// One label as sent: for which prediction, what was true, and when it became known.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub prediction_id: String,
    pub truth: Truth,
    pub label_ms: i64,
}

/// A stored prediction, as grading needs it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Predicted {
    pub prediction_id: String,
    pub model: String,
    pub model_version: String,
    pub status: String,
    pub label: Option<String>,
    pub value: Option<f64>,
    pub confidence: Option<f64>,
    pub ts_ms: i64,
}

/// A label joined with its prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    pub prediction_id: String,
    pub model: String,
    pub truth: Truth,
    pub predicted_label: Option<String>,
    pub predicted_value: Option<f64>,
    pub confidence: Option<f64>,
    pub predicted_ms: i64,
    pub label_ms: i64,
}

impl Graded {
    pub fn new(label: Label, p: &Predicted) -> Self {
        Graded {
            prediction_id: label.prediction_id,
            model: p.model.clone(),
            truth: label.truth,
            predicted_label: p.label.clone(),
            predicted_value: p.value,
            confidence: p.confidence,
            predicted_ms: p.ts_ms,
            label_ms: label.label_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    prediction_id: String,
    truth_label: Option<String>,
    truth_value: Option<f64>,
    label_ms: i64,
}

/// What one feedback write stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackStored {
    /// Which of the graded labels were new (same order as given).
    pub graded: Vec<bool>,
    /// Which of the pending labels were new.
    pub pending: Vec<bool>,
}

/// Binds `ids` as a comma-separated list.
fn push_ids<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, ids: &[&str])
where
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
}

impl Store {
    /// Of `ids`, the stored predictions, and the ids that already have a label
    /// (joined or pending).
    pub async fn feedback_lookup(
        &self,
        ids: &[&str],
    ) -> Result<(Vec<Predicted>, HashSet<String>), StoreError> {
        let mut predicted = Vec::new();
        let mut labelled = HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            with_pool!(self, pool => {
                let mut q = QueryBuilder::new(
                    "SELECT prediction_id, model, model_version, status, label, value, confidence, ts_ms \
                     FROM predictions WHERE prediction_id IN (",
                );
                push_ids(&mut q, chunk);
                q.push(")");
                predicted.extend(q.build_query_as::<Predicted>().fetch_all(pool).await?);
                let mut q = QueryBuilder::new("SELECT prediction_id FROM feedback WHERE prediction_id IN (");
                push_ids(&mut q, chunk);
                q.push(") UNION ALL SELECT prediction_id FROM pending_feedback WHERE prediction_id IN (");
                push_ids(&mut q, chunk);
                q.push(")");
                for row in q.build().fetch_all(pool).await? {
                    labelled.insert(row.try_get::<String, _>(0)?);
                }
            });
        }
        Ok((predicted, labelled))
    }

    /// Stores graded labels and pending labels, and removes `joined` from the pending
    /// ones (their prediction came), in one transaction. A label whose prediction id
    /// already has one is left out, and reported as not new.
    pub async fn insert_feedback(
        &self,
        graded: &[Graded],
        pending: &[Label],
        joined: &[&str],
        received_ms: i64,
    ) -> Result<FeedbackStored, StoreError> {
        let mut stored = FeedbackStored::default();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for chunk in joined.chunks(CHUNK) {
                let mut q = QueryBuilder::new("DELETE FROM pending_feedback WHERE prediction_id IN (");
                push_ids(&mut q, chunk);
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            for chunk in graded.chunks(CHUNK) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO feedback (prediction_id, model, truth_label, truth_value, predicted_label, \
                     predicted_value, confidence, predicted_ms, label_ms, received_ms) ",
                );
                q.push_values(chunk, |mut b, g| {
                    b.push_bind(g.prediction_id.as_str())
                        .push_bind(g.model.as_str())
                        .push_bind(g.truth.label())
                        .push_bind(g.truth.value())
                        .push_bind(g.predicted_label.as_deref())
                        .push_bind(g.predicted_value)
                        .push_bind(g.confidence)
                        .push_bind(g.predicted_ms)
                        .push_bind(g.label_ms)
                        .push_bind(received_ms);
                });
                q.push(" ON CONFLICT (prediction_id) DO NOTHING RETURNING prediction_id");
                let new = returned_ids!(q, &mut *tx);
                stored.graded.extend(chunk.iter().map(|g| new.contains(&g.prediction_id)));
            }
            for chunk in pending.chunks(CHUNK) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO pending_feedback (prediction_id, truth_label, truth_value, label_ms, received_ms) ",
                );
                q.push_values(chunk, |mut b, l| {
                    b.push_bind(l.prediction_id.as_str())
                        .push_bind(l.truth.label())
                        .push_bind(l.truth.value())
                        .push_bind(l.label_ms)
                        .push_bind(received_ms);
                });
                q.push(" ON CONFLICT (prediction_id) DO NOTHING RETURNING prediction_id");
                let new = returned_ids!(q, &mut *tx);
                stored.pending.extend(chunk.iter().map(|l| new.contains(&l.prediction_id)));
            }
            tx.commit().await?;
        });
        Ok(stored)
    }

    /// The pending labels of these prediction ids (left in place: `insert_feedback`
    /// removes them once they are joined).
    pub async fn pending_for(&self, ids: &[&str]) -> Result<Vec<Label>, StoreError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let rows: Vec<PendingRow> = with_pool!(self, pool => {
                let mut q = QueryBuilder::new(
                    "SELECT prediction_id, truth_label, truth_value, label_ms FROM pending_feedback \
                     WHERE prediction_id IN (",
                );
                push_ids(&mut q, chunk);
                q.push(")");
                q.build_query_as().fetch_all(pool).await?
            });
            found.extend(rows.into_iter().map(|r| Label {
                prediction_id: r.prediction_id,
                truth: Truth::from_columns(r.truth_label, r.truth_value),
                label_ms: r.label_ms,
            }));
        }
        Ok(found)
    }

    /// How many labels wait for their prediction.
    pub async fn pending_count(&self) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM pending_feedback").fetch_one(pool).await?
        });
        Ok(n as u64)
    }

    /// The prediction ids of every pending label (at most the pending bound).
    pub async fn pending_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT prediction_id FROM pending_feedback").fetch_all(pool).await?
        }))
    }

    /// Drops pending labels received before `before_ms`; how many went.
    pub async fn expire_pending(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query("DELETE FROM pending_feedback WHERE received_ms < $1")
                .bind(before_ms)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Drops the `n` oldest pending labels; how many went.
    pub async fn evict_pending(&self, n: u64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM pending_feedback WHERE prediction_id IN (\
                 SELECT prediction_id FROM pending_feedback ORDER BY received_ms, prediction_id LIMIT $1)",
            )
            .bind(n as i64)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }
}
