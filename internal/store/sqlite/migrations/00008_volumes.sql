-- +goose Up
-- Issue 10: data volumes (EVS). A volume has a name; a project's volumes
-- are listed oldest first.
ALTER TABLE volumes ADD COLUMN name TEXT NOT NULL DEFAULT '';
CREATE INDEX volumes_project ON volumes(project_id, created, id);

-- +goose Down
DROP INDEX volumes_project;
ALTER TABLE volumes DROP COLUMN name;
