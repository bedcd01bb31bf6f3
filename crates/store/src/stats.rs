//! Per-model figures over a time window, for `GET /stats`: counts, defects, the mean
//! confidence and label mix of classifiers, and the distribution of a regressor's
//! predicted values.

use std::collections::BTreeMap;

use serde::Serialize;

use sqlx::AssertSqlSafe;

use crate::rank::Quantile;
use crate::{Store, StoreError};

/// Per-model figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStats {
    pub model: String,
    pub count: u64,
    pub errors: u64,
    pub defects: u64,
    pub defect_rate: f64,
    pub mean_confidence: Option<f64>,
    /// Successful predictions per label.
    pub labels: BTreeMap<String, u64>,
    /// A regressor's predicted values; absent for a classifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<ValueStats>,
}

/// The predicted values of a window's successful predictions. Quantiles are exact, by
/// nearest rank: `p50` is the smallest value at least half of them are not above.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueStats {
    pub mean: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The quantiles of [`ValueStats`] besides the minimum (rank 1).
const QUANTILES: [Quantile; 4] = [Quantile::P50, Quantile::P90, Quantile::P99, Quantile::MAX];

/// Which of `ValueStats`' fields the value at rank `rn` (1-based) of `n` sorted values
/// fills; one rank may fill several when `n` is small. The query's `WHERE` selects the
/// same ranks ([`Quantile::rank_sql`]).
fn fill(stats: &mut ValueStats, rn: i64, n: i64, value: f64) {
    if rn == 1 {
        stats.min = value;
    }
    let [p50, p90, p99, max] = QUANTILES.map(|q| q.rank(n));
    for (rank, field) in [
        (p50, &mut stats.p50),
        (p90, &mut stats.p90),
        (p99, &mut stats.p99),
        (max, &mut stats.max),
    ] {
        if rn == rank {
            *field = value;
        }
    }
}

/// A model's counts and means over the window.
#[derive(sqlx::FromRow)]
struct TotalsRow {
    model: String,
    n: i64,
    errors: Option<i64>,
    defects: Option<i64>,
    mean_confidence: Option<f64>,
    mean_value: Option<f64>,
}

/// Successful predictions of one label.
#[derive(sqlx::FromRow)]
struct LabelRow {
    model: String,
    label: String,
    n: i64,
}

/// The value at rank `rn` of a model's `n` sorted values.
#[derive(sqlx::FromRow)]
struct RankedRow {
    model: String,
    rn: i64,
    n: i64,
    value: f64,
}

impl Store {
    /// Per-model count, errors, defects, mean confidence and label mix over
    /// `[since_ms, until_ms)`, and for models whose records carry values, their mean
    /// and quantiles.
    pub async fn stats(&self, since_ms: i64, until_ms: i64) -> Result<Vec<ModelStats>, StoreError> {
        // The ranks are `fill`'s; the SQL is built from constants only.
        let wanted: Vec<String> = QUANTILES
            .iter()
            .map(|q| format!(" OR rn = {}", q.rank_sql()))
            .collect();
        let ranked_sql = format!(
            "SELECT model, rn, n, value FROM (\
               SELECT model, value, \
               ROW_NUMBER() OVER (PARTITION BY model ORDER BY value) AS rn, \
               COUNT(*) OVER (PARTITION BY model) AS n \
               FROM predictions WHERE ts_ms >= $1 AND ts_ms < $2 \
               AND status = 'success' AND value IS NOT NULL\
             ) ranked WHERE rn = 1{}",
            wanted.concat()
        );
        let (totals, labels, ranked) = with_pool!(self, pool => {
            let totals: Vec<TotalsRow> = sqlx::query_as(
                "SELECT model, COUNT(*) AS n, \
                 SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, \
                 SUM(is_defect) AS defects, \
                 AVG(CASE WHEN status = 'success' THEN confidence END) AS mean_confidence, \
                 AVG(CASE WHEN status = 'success' THEN value END) AS mean_value \
                 FROM predictions WHERE ts_ms >= $1 AND ts_ms < $2 GROUP BY model ORDER BY model",
            )
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(pool)
            .await?;
            let labels: Vec<LabelRow> = sqlx::query_as(
                "SELECT model, label, COUNT(*) AS n FROM predictions \
                 WHERE ts_ms >= $1 AND ts_ms < $2 AND status = 'success' AND label IS NOT NULL \
                 GROUP BY model, label",
            )
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(pool)
            .await?;
            // One sort per model in the database; only the five ranked rows come back.
            let ranked: Vec<RankedRow> = sqlx::query_as(AssertSqlSafe(ranked_sql.as_str()))
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(pool)
            .await?;
            (totals, labels, ranked)
        });
        Ok(totals
            .into_iter()
            .map(|t| {
                let labels = labels
                    .iter()
                    .filter(|l| l.model == t.model)
                    .map(|l| (l.label.clone(), l.n as u64))
                    .collect();
                let value = t.mean_value.map(|mean| {
                    let mut stats = ValueStats {
                        mean,
                        min: f64::NAN,
                        p50: f64::NAN,
                        p90: f64::NAN,
                        p99: f64::NAN,
                        max: f64::NAN,
                    };
                    for r in ranked.iter().filter(|r| r.model == t.model) {
                        fill(&mut stats, r.rn, r.n, r.value);
                    }
                    stats
                });
                let (n, defects) = (t.n, t.defects.unwrap_or(0));
                ModelStats {
                    count: n as u64,
                    errors: t.errors.unwrap_or(0) as u64,
                    defects: defects as u64,
                    defect_rate: if n > 0 {
                        defects as f64 / n as f64
                    } else {
                        0.0
                    },
                    mean_confidence: t.mean_confidence,
                    labels,
                    value,
                    model: t.model,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranks the SQL selects are the nearest ranks of 0, 0.5, 0.9, 0.99 and 1.
    #[test]
    fn ranks_are_nearest_ranks() {
        for n in 1..=300i64 {
            let mut stats = ValueStats {
                mean: 0.0,
                min: f64::NAN,
                p50: f64::NAN,
                p90: f64::NAN,
                p99: f64::NAN,
                max: f64::NAN,
            };
            for rn in 1..=n {
                fill(&mut stats, rn, n, rn as f64);
            }
            let nearest = |q: f64| (q * n as f64 - 1e-9).ceil().max(1.0);
            assert_eq!(stats.min, 1.0);
            assert_eq!(stats.p50, nearest(0.5), "n={n}");
            assert_eq!(stats.p90, nearest(0.9), "n={n}");
            assert_eq!(stats.p99, nearest(0.99), "n={n}");
            assert_eq!(stats.max, n as f64);
        }
    }
}
