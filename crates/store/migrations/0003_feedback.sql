-- Ground truth (POST /feedback). Timestamps are unix milliseconds, as in 0001.

-- The models the inference services serve, as they last announced them: the label set
-- feedback is checked against, and the baseline quality alerts compare with.
CREATE TABLE model_cards (
    model TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    task TEXT NOT NULL,
    labels TEXT NOT NULL,
    baseline_accuracy DOUBLE PRECISION,
    baseline_mae DOUBLE PRECISION,
    baseline_rmse DOUBLE PRECISION,
    updated_ms BIGINT NOT NULL
);

-- A true label (or value) joined with its prediction: one row per prediction, the
-- first label sent wins. Quality over a window reads (model, label_ms); label
-- coverage reads (model, predicted_ms).
CREATE TABLE feedback (
    prediction_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    truth_label TEXT,
    truth_value DOUBLE PRECISION,
    predicted_label TEXT,
    predicted_value DOUBLE PRECISION,
    confidence DOUBLE PRECISION,
    predicted_ms BIGINT NOT NULL,
    label_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL
);
CREATE INDEX feedback_model_label ON feedback (model, label_ms);
CREATE INDEX feedback_model_predicted ON feedback (model, predicted_ms);

-- Labels that came before their prediction's record: joined when it arrives, dropped
-- (and counted) when they expire or when too many wait.
CREATE TABLE pending_feedback (
    prediction_id TEXT PRIMARY KEY,
    truth_label TEXT,
    truth_value DOUBLE PRECISION,
    label_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL
);
CREATE INDEX pending_feedback_received ON pending_feedback (received_ms);
