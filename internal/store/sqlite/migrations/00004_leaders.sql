-- +goose Up
-- Leaderships with a term (store.Store.LeaderElect): the node named by
-- owner runs the periodic upkeep until expires (unix ms), unless it renews.
CREATE TABLE leaders (
	name TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	expires INTEGER NOT NULL
);

-- +goose Down
DROP TABLE leaders;
