-- Every announced version's card (model_cards keeps the current one per model), so a
-- label is checked against the classes of the version that made its prediction: a
-- later version may have other classes.
CREATE TABLE model_card_versions (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    task TEXT NOT NULL,
    labels TEXT NOT NULL,
    baseline_accuracy DOUBLE PRECISION,
    baseline_mae DOUBLE PRECISION,
    baseline_rmse DOUBLE PRECISION,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (model, version)
);
INSERT INTO model_card_versions
    SELECT model, version, task, labels, baseline_accuracy, baseline_mae, baseline_rmse, updated_ms
    FROM model_cards;
