-- +goose Up
-- The list filters' name and ip patterns (a "." matches any one character,
-- asked as LIKE '%...%') through pg_trgm's trigram GIN indexes on server
-- names and port addresses. pg_trgm ships in Debian's postgresql-15 (its
-- contrib) and is a trusted extension: a database owner may create it.
-- Where it cannot be created, the migration goes on without the indexes
-- (the patterns then scan the project's rows, as before) and says so.
-- fastupdate is off: with it on, new entries wait in a pending list that
-- every query reads through until a vacuum merges it (up to 4 MB), which
-- is what the list's latency would pay; an insert adds a few trigrams.
-- +goose StatementBegin
DO $$
BEGIN
	CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
	RAISE WARNING 'ecsd: pg_trgm is not available (%); the name and ip list patterns will scan', SQLERRM;
END $$;
-- +goose StatementEnd
-- +goose StatementBegin
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
		CREATE INDEX servers_name_trgm ON servers USING gin (name gin_trgm_ops) WITH (fastupdate = off);
		CREATE INDEX ports_ip_trgm ON ports USING gin (ip gin_trgm_ops) WITH (fastupdate = off);
	END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS ports_ip_trgm;
DROP INDEX IF EXISTS servers_name_trgm;
