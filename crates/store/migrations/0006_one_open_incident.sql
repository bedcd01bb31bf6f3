-- At most one open incident per alert fingerprint. The check in the store ("is one
-- open already?", then an insert) ran in a READ COMMITTED transaction on PostgreSQL:
-- two notifications of one alert at the same moment (an Alertmanager HA pair sends
-- both) each found none and each opened one. The index makes the database refuse the
-- second; the insert then does nothing.
-- Duplicates opened before this index are merged into the first one opened: closed at
-- the moment they were opened.
UPDATE incidents SET status = 'resolved', resolved_ms = opened_ms
WHERE status = 'open' AND EXISTS (
    SELECT 1 FROM incidents AS first
    WHERE first.fingerprint = incidents.fingerprint AND first.status = 'open'
      AND (first.opened_ms < incidents.opened_ms
           OR (first.opened_ms = incidents.opened_ms AND first.id < incidents.id))
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (fingerprint) WHERE status = 'open';
