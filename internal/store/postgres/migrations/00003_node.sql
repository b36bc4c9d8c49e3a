-- +goose Up
-- Leaderships with a term (store.Store.LeaderElect): the node named by
-- owner runs the periodic upkeep until expires (unix ms), unless it renews.
CREATE TABLE leaders (
	name TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	expires BIGINT NOT NULL
);

-- Every change to credentials or images tells the other nodes, as it
-- commits, to drop what they keep of them (store.ChangeNotifier): a
-- trigger, so that no writer can forget to.
-- +goose StatementBegin
CREATE FUNCTION ecsd_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('ecsd_changes', TG_ARGV[0]);
	RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER credentials_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credentials
	FOR EACH STATEMENT EXECUTE FUNCTION ecsd_notify_change('credentials');
CREATE TRIGGER images_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON images
	FOR EACH STATEMENT EXECUTE FUNCTION ecsd_notify_change('images');

-- +goose Down
DROP TRIGGER images_changed ON images;
DROP TRIGGER credentials_changed ON credentials;
DROP FUNCTION ecsd_notify_change();
DROP TABLE leaders;
