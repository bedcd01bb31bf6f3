-- A regressor's predicted value (a classifier's records keep it NULL and carry a label).
ALTER TABLE predictions ADD COLUMN value DOUBLE PRECISION;
