//! The model cards inference services announce: the current one per model (the last
//! announcement wins), and every version's, for labels of older predictions.

use vigil_records::{BaselineSummary, CardSummary};

use crate::{BeginWrite, Store, StoreError};

#[derive(sqlx::FromRow)]
struct CardRow {
    model: String,
    version: String,
    task: String,
    labels: String,
    baseline_accuracy: Option<f64>,
    baseline_mae: Option<f64>,
    baseline_rmse: Option<f64>,
}

impl CardRow {
    /// `None` for a row this version cannot read (written by a newer one).
    fn into_card(self) -> Option<CardSummary> {
        let baseline = (self.baseline_accuracy.is_some()
            || self.baseline_mae.is_some()
            || self.baseline_rmse.is_some())
        .then_some(BaselineSummary {
            accuracy: self.baseline_accuracy,
            mae: self.baseline_mae,
            rmse: self.baseline_rmse,
        });
        Some(CardSummary {
            model: self.model,
            version: self.version,
            task: self.task.parse().ok()?,
            labels: serde_json::from_str(&self.labels).ok()?,
            baseline,
        })
    }
}

impl Store {
    /// Keeps `card` as its model's current one, and as its version's.
    pub async fn put_card(&self, card: &CardSummary, now_ms: i64) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&card.labels).unwrap_or_else(|_| "[]".into());
        let b = card.baseline.unwrap_or_default();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (table, key) in [("model_cards", "model"), ("model_card_versions", "model, version")] {
                let sql = format!(
                    "INSERT INTO {table} (model, version, task, labels, baseline_accuracy, baseline_mae, \
                     baseline_rmse, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT ({key}) DO UPDATE SET version = excluded.version, task = excluded.task, \
                     labels = excluded.labels, baseline_accuracy = excluded.baseline_accuracy, \
                     baseline_mae = excluded.baseline_mae, baseline_rmse = excluded.baseline_rmse, \
                     updated_ms = excluded.updated_ms"
                );
                // Table and key names are the two constants above.
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&card.model)
                    .bind(&card.version)
                    .bind(card.task.as_str())
                    .bind(&labels)
                    .bind(b.accuracy)
                    .bind(b.mae)
                    .bind(b.rmse)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The models with a card, by their oldest stored announcement (a version's card
    /// changed since counts from its change; then by name): the order a collector gives
    /// the quality window's models their metric series' places at start, close to the
    /// order their records first came in.
    pub async fn models_by_first_card(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT model FROM model_card_versions GROUP BY model ORDER BY MIN(updated_ms), model",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(model,)| model).collect())
    }

    /// Every version's card, oldest announcement first.
    pub async fn card_versions(&self) -> Result<Vec<CardSummary>, StoreError> {
        let rows: Vec<CardRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT model, version, task, labels, baseline_accuracy, baseline_mae, baseline_rmse \
                 FROM model_card_versions ORDER BY updated_ms, model, version",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().filter_map(CardRow::into_card).collect())
    }

    /// Every model's current card, by name.
    pub async fn cards(&self) -> Result<Vec<CardSummary>, StoreError> {
        let rows: Vec<CardRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT model, version, task, labels, baseline_accuracy, baseline_mae, baseline_rmse \
                 FROM model_cards ORDER BY model",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().filter_map(CardRow::into_card).collect())
    }
}
