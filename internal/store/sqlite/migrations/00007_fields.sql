-- +goose Up
-- Issue 11 (create fields): a server's description, security group ids
-- and sealed user data, as JSON on its row (no filter reads them).
ALTER TABLE servers ADD COLUMN details TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE servers DROP COLUMN details;
