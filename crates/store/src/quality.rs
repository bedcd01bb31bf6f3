//! One model's ground-truth figures over a window of label time, as the database
//! aggregates them for `GET /quality`: the labels grouped by (true class, predicted
//! class, confidence bin), a regressor's error sums, label-lag and error quantiles by
//! nearest rank, and label coverage (with the predictions made in the window, counted
//! for every model in one read). Every query reads a range of an index, never the
//! whole table, and returns at most classes² × 10 rows plus a few ranks.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, QueryBuilder};

use crate::rank::Quantile;
use crate::{Store, StoreError};

/// Confidence bins of the calibration error: [0, 0.1), [0.1, 0.2), …, [0.9, 1].
pub const CALIBRATION_BINS: usize = 10;

/// The calibration bin of `confidence`, by the same comparisons the SQL makes (so
/// a confidence of exactly 0.3 lands in the same bin in both).
pub fn calibration_bin(confidence: f64) -> usize {
    (1..CALIBRATION_BINS)
        .take_while(|k| confidence >= *k as f64 / CALIBRATION_BINS as f64)
        .count()
}

/// The SQL of [`calibration_bin`].
fn calibration_bin_sql() -> String {
    // No confidence, no bin (the label still counts in the confusion matrix).
    let mut sql = String::from("CAST(CASE WHEN confidence IS NULL THEN NULL");
    for k in 1..CALIBRATION_BINS {
        sql.push_str(&format!(
            " WHEN confidence < {} THEN {}",
            k as f64 / CALIBRATION_BINS as f64,
            k - 1
        ));
    }
    // PostgreSQL's CASE of integer literals is an int4; the row type is i64.
    sql.push_str(&format!(" ELSE {} END AS BIGINT)", CALIBRATION_BINS - 1));
    sql
}

/// Labels of one (true class, predicted class, confidence bin).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConfusionRow {
    pub truth: String,
    pub predicted: String,
    /// `None` for predictions stored without a confidence.
    pub bin: Option<i64>,
    pub n: i64,
    /// Sum of the predictions' confidences.
    pub confidence: f64,
}

/// [`ConfusionRow`]s and [`ErrorSums`] of one model and one slot of label time
/// (`label_ms / slot_ms`): what a restarted collector refills its quality window from.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SlotCell {
    pub model: String,
    pub slot: i64,
    #[sqlx(flatten)]
    pub cell: ConfusionRow,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SlotErrors {
    pub model: String,
    pub slot: i64,
    #[sqlx(flatten)]
    pub errors: ErrorSums,
}

/// A regressor's error sums (prediction minus truth).
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct ErrorSums {
    pub n: i64,
    pub abs_sum: f64,
    pub sq_sum: f64,
}

/// The value at one quantile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    pub quantile: Quantile,
    pub value: f64,
}

#[derive(sqlx::FromRow)]
struct RankRow {
    rn: i64,
    n: i64,
    value: f64,
}

/// One model's figures over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityRows {
    pub confusion: Vec<ConfusionRow>,
    pub errors: Option<ErrorSums>,
    /// Absolute error p50, p90, p99 (regressors).
    pub abs_error: Vec<Ranked>,
    /// Label lag (label time minus prediction time) p50 and p95, in milliseconds.
    pub lag_ms: Vec<Ranked>,
    /// Labels whose prediction was made in the window.
    pub labelled: u64,
}

/// The window's values at `quantiles`, from the ranked rows the query selected.
fn pick(rows: &[RankRow], quantiles: &[Quantile]) -> Vec<Ranked> {
    quantiles
        .iter()
        .filter_map(|q| {
            rows.iter().find(|r| r.rn == q.rank(r.n)).map(|r| Ranked {
                quantile: *q,
                value: r.value,
            })
        })
        .collect()
}

/// `SELECT rn, n, value` for the given quantiles of `expr` over the model's labels in
/// the window: one sort in the database, only the chosen ranks come back.
fn ranked_sql(expr: &str, extra: &str, quantiles: &[Quantile]) -> String {
    let wanted: Vec<String> = quantiles
        .iter()
        .map(|q| format!("rn = {}", q.rank_sql()))
        .collect();
    format!(
        "SELECT rn, n, value FROM (SELECT CAST({expr} AS DOUBLE PRECISION) AS value, \
         ROW_NUMBER() OVER (ORDER BY {expr}) AS rn, COUNT(*) OVER () AS n \
         FROM feedback WHERE model = $1 AND label_ms >= $2 AND label_ms < $3{extra}) ranked \
         WHERE {}",
        wanted.join(" OR ")
    )
}

const LAG_QUANTILES: [Quantile; 2] = [Quantile::P50, Quantile::P95];
const ERROR_QUANTILES: [Quantile; 3] = [Quantile::P50, Quantile::P90, Quantile::P99];

impl Store {
    /// `model`'s labels with label time in `[since_ms, until_ms)`, aggregated. The SQL
    /// is assembled from this module's constants (bins, quantiles) only; every value
    /// from a request is a bind.
    pub async fn quality(
        &self,
        model: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<QualityRows, StoreError> {
        let confusion_sql = format!(
            "SELECT truth_label AS truth, predicted_label AS predicted, {} AS bin, COUNT(*) AS n, \
             COALESCE(SUM(confidence), 0.0) AS confidence FROM feedback \
             WHERE model = $1 AND label_ms >= $2 AND label_ms < $3 AND truth_label IS NOT NULL \
             AND predicted_label IS NOT NULL GROUP BY 1, 2, 3",
            calibration_bin_sql()
        );
        let values = " AND truth_value IS NOT NULL AND predicted_value IS NOT NULL";
        // A label timestamped before its prediction (clocks differ) counts as lag 0,
        // as in the histogram.
        let lag_sql = ranked_sql(
            "(CASE WHEN label_ms > predicted_ms THEN label_ms - predicted_ms ELSE 0 END)",
            "",
            &LAG_QUANTILES,
        );
        let error_sql = ranked_sql(
            "ABS(predicted_value - truth_value)",
            values,
            &ERROR_QUANTILES,
        );
        let (confusion, errors, lag, abs_error, labelled) = with_pool!(self, pool => {
            let confusion: Vec<ConfusionRow> = sqlx::query_as(AssertSqlSafe(confusion_sql.as_str()))
                .bind(model).bind(since_ms).bind(until_ms)
                .fetch_all(pool).await?;
            let errors: Option<ErrorSums> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n, SUM(ABS(predicted_value - truth_value)) AS abs_sum, \
                 SUM((predicted_value - truth_value) * (predicted_value - truth_value)) AS sq_sum \
                 FROM feedback WHERE model = $1 AND label_ms >= $2 AND label_ms < $3{values} \
                 HAVING COUNT(*) > 0",
            )))
            .bind(model).bind(since_ms).bind(until_ms)
            .fetch_optional(pool).await?;
            let lag: Vec<RankRow> = sqlx::query_as(AssertSqlSafe(lag_sql.as_str()))
                .bind(model).bind(since_ms).bind(until_ms)
                .fetch_all(pool).await?;
            let abs_error: Vec<RankRow> = sqlx::query_as(AssertSqlSafe(error_sql.as_str()))
                .bind(model).bind(since_ms).bind(until_ms)
                .fetch_all(pool).await?;
            let labelled: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM feedback WHERE model = $1 AND predicted_ms >= $2 AND predicted_ms < $3",
            )
            .bind(model).bind(since_ms).bind(until_ms)
            .fetch_one(pool).await?;
            (confusion, errors, lag, abs_error, labelled)
        });
        Ok(QualityRows {
            confusion,
            errors,
            abs_error: pick(&abs_error, &ERROR_QUANTILES),
            lag_ms: pick(&lag, &LAG_QUANTILES),
            labelled: labelled as u64,
        })
    }

    /// Successful predictions made in `[since_ms, until_ms)`, per model (only
    /// `model`'s when given). One grouped read for every model: a read per model walked
    /// the window's rows once for each (the time index leads with the time), so a
    /// year's window over 255 cards took 20 s.
    pub async fn predicted(
        &self,
        model: Option<&str>,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool => {
            let mut q = QueryBuilder::new("SELECT model, COUNT(*) FROM predictions WHERE ts_ms >= ");
            q.push_bind(since_ms).push(" AND ts_ms < ").push_bind(until_ms);
            if let Some(model) = model {
                q.push(" AND model = ").push_bind(model.to_owned());
            }
            q.push(" AND status = 'success' GROUP BY model");
            q.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(model, n)| (model, n.max(0) as u64))
            .collect())
    }
}

impl Store {
    /// Every model's labels since `since_ms`, aggregated per slot of `slot_ms` of label
    /// time: one grouped read instead of a row per label.
    pub async fn window_rows(
        &self,
        since_ms: i64,
        slot_ms: i64,
    ) -> Result<(Vec<SlotCell>, Vec<SlotErrors>), StoreError> {
        let cells_sql = format!(
            "SELECT model, label_ms / $2 AS slot, truth_label AS truth, predicted_label AS predicted, \
             {} AS bin, COUNT(*) AS n, COALESCE(SUM(confidence), 0.0) AS confidence FROM feedback \
             WHERE label_ms >= $1 AND truth_label IS NOT NULL AND predicted_label IS NOT NULL \
             GROUP BY 1, 2, 3, 4, 5",
            calibration_bin_sql()
        );
        Ok(with_pool!(self, pool => {
            let cells: Vec<SlotCell> = sqlx::query_as(AssertSqlSafe(cells_sql.as_str()))
                .bind(since_ms).bind(slot_ms)
                .fetch_all(pool).await?;
            let errors: Vec<SlotErrors> = sqlx::query_as(
                "SELECT model, label_ms / $2 AS slot, COUNT(*) AS n, \
                 SUM(ABS(predicted_value - truth_value)) AS abs_sum, \
                 SUM((predicted_value - truth_value) * (predicted_value - truth_value)) AS sq_sum \
                 FROM feedback WHERE label_ms >= $1 AND truth_value IS NOT NULL \
                 AND predicted_value IS NOT NULL GROUP BY 1, 2",
            )
            .bind(since_ms).bind(slot_ms)
            .fetch_all(pool).await?;
            (cells, errors)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_split_at_tenths_and_one_is_in_the_last() {
        assert_eq!(calibration_bin(0.0), 0);
        assert_eq!(calibration_bin(0.0999), 0);
        assert_eq!(calibration_bin(0.1), 1);
        assert_eq!(calibration_bin(0.3), 3);
        assert_eq!(calibration_bin(0.95), 9);
        assert_eq!(calibration_bin(1.0), 9);
        assert!(calibration_bin_sql().contains("WHEN confidence < 0.3 THEN 2"));
    }
}
