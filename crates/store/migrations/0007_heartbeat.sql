-- One row the collector's probe rewrites every few seconds: a `SELECT 1` answers from
-- a database that takes no write (locked by another process, a full disk, a read-only
-- volume), so `logging_db_initialized` and readiness stayed up while nothing could be
-- stored, and DatabaseNotAccessible could not fire.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY,
    at_ms BIGINT NOT NULL
);
