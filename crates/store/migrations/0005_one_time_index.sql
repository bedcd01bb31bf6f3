-- One index for reading predictions by time, instead of one by time and one by model
-- and time: every stored prediction wrote three B-trees besides its table, now two
-- (~20 % less per row for SQLite's writer; docs/BENCHMARKS.md, "One time index
-- instead of two").
-- Newest-first listings walk it in time order; a model filter and the per-model
-- counts over a window read the model from the index without touching the table.
DROP INDEX predictions_model_ts;
DROP INDEX predictions_ts;
CREATE INDEX predictions_ts_model ON predictions (ts_ms, model, prediction_id);
