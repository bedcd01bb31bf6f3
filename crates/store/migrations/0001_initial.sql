-- One schema for SQLite and PostgreSQL: the types below map to the same affinities
-- (BIGINT -> INTEGER, DOUBLE PRECISION -> REAL in SQLite). Timestamps are unix
-- milliseconds, so ordering and ranges behave the same on both.
CREATE TABLE predictions (
    prediction_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    label TEXT,
    confidence DOUBLE PRECISION,
    is_defect INTEGER NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT,
    status TEXT NOT NULL,
    error_type TEXT,
    features TEXT,
    received_ms BIGINT NOT NULL
);
CREATE INDEX predictions_ts ON predictions (ts_ms, prediction_id);
CREATE INDEX predictions_model_ts ON predictions (model, ts_ms);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT,
    labels TEXT NOT NULL,
    starts_at_ms BIGINT NOT NULL,
    opened_ms BIGINT NOT NULL,
    resolved_ms BIGINT
);
CREATE INDEX incidents_fingerprint_status ON incidents (fingerprint, status);
