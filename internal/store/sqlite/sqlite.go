// Package sqlite is the embedded Store: SQLite in WAL mode through the pure-Go
// modernc.org/sqlite driver (no cgo).
//
// It keeps one write connection (immediate transactions, so a Write never
// fails half-way on a lock upgrade) and a pool of read-only connections for
// API reads, which WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Config configures a Store.
type Config struct {
	// Path is the database file.
	Path string
	// ReadConns is the size of the read-only pool (default 4).
	ReadConns int
	// Synchronous is SQLite's synchronous pragma: NORMAL (default; a
	// committed transaction survives a process crash, and may be lost only
	// on power loss) or FULL.
	Synchronous string
}

// Store is the SQLite Store.
type Store struct {
	wdb *sql.DB
	rdb *sql.DB
	w   *stmtCache // the write connection
	r   *stmtCache // the read-only pool
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database and applies its pending
// migrations (migrations/*.sql, through store/migrate).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.ReadConns <= 0 {
		cfg.ReadConns = 4
	}
	if cfg.Synchronous == "" {
		cfg.Synchronous = "NORMAL"
	}
	if cfg.Synchronous != "NORMAL" && cfg.Synchronous != "FULL" {
		return nil, fmt.Errorf("sqlite: synchronous must be NORMAL or FULL, not %q", cfg.Synchronous)
	}
	path := (&url.URL{Path: cfg.Path}).EscapedPath()
	// Both pools memory-map the first 64 MiB of the database: reads of
	// mapped pages cost no syscall, and the cap bounds what the mapping
	// adds to the process's resident memory.
	wdsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(" + cfg.Synchronous + ")&_pragma=foreign_keys(0)&_pragma=mmap_size(67108864)&_txlock=immediate"
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrateUp(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	rdsn := "file:" + path + "?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)&_pragma=mmap_size(67108864)"
	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open read pool: %w", err)
	}
	r.SetMaxOpenConns(cfg.ReadConns)
	r.SetMaxIdleConns(cfg.ReadConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: read pool: %w", err)
	}
	return &Store{wdb: w, rdb: r, w: newStmtCache(w), r: newStmtCache(r)}, nil
}

// Close closes both pools.
func (s *Store) Close() error {
	s.r.close()
	s.w.close()
	return errors.Join(s.rdb.Close(), s.wdb.Close())
}

// queryer is what reads need: *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func notFound(what, id string) error {
	return fmt.Errorf("%s %q: %w", what, id, ecs.ErrNotFound)
}

// Write runs fn in an immediate write transaction.
func (s *Store) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	t, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	err = fn(&tx{q: txQueryer{tx: t, c: s.w}})
	if err != nil {
		t.Rollback()
	} else if err = t.Commit(); err != nil {
		err = fmt.Errorf("sqlite: commit: %w", err)
	}
	s.w.prepareWanted(ctx)
	return err
}

// tx implements store.Tx.
type tx struct{ q queryer }

// Lock needs to take nothing: Writes are immediate transactions, which
// SQLite runs one at a time, across processes too.
func (t *tx) Lock(context.Context, string) error { return nil }

// ---- credentials, projects, images

func (t *tx) CredentialCount(ctx context.Context) (int, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT count(*) FROM credentials`).Scan(&n)
	return n, err
}

func (t *tx) CredentialInsert(ctx context.Context, c store.SealedCredential) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO credentials(access_key, secret_sealed, project_id, user_id, created) VALUES(?,?,?,?,?)`,
		c.AccessKey, c.SealedSecret, c.ProjectID, c.UserID, ms(c.Created))
	if isUnique(err) {
		return fmt.Errorf("credential %q: %w", c.AccessKey, ecs.ErrConflict)
	}
	return err
}

func (s *Store) CredentialGet(ctx context.Context, ak string) (store.SealedCredential, error) {
	var c store.SealedCredential
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT access_key, secret_sealed, project_id, user_id, created FROM credentials WHERE access_key = ?`, ak).
		Scan(&c.AccessKey, &c.SealedSecret, &c.ProjectID, &c.UserID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFound("credential", ak)
	}
	c.Created = fromMS(created)
	return c, err
}

func (s *Store) CredentialCount(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM credentials`).Scan(&n)
	return n, err
}

func (s *Store) CredentialList(ctx context.Context) ([]store.SealedCredential, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT access_key, secret_sealed, project_id, user_id, created FROM credentials ORDER BY access_key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []store.SealedCredential
	for rows.Next() {
		var c store.SealedCredential
		var created int64
		if err := rows.Scan(&c.AccessKey, &c.SealedSecret, &c.ProjectID, &c.UserID, &created); err != nil {
			return nil, err
		}
		c.Created = fromMS(created)
		list = append(list, c)
	}
	return list, rows.Err()
}

func (t *tx) ProjectInsert(ctx context.Context, id, name string, created time.Time) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO projects(id, name, created) VALUES(?,?,?)`, id, name, ms(created))
	if isUnique(err) {
		return fmt.Errorf("project %q: %w", id, ecs.ErrConflict)
	}
	return err
}

const imageCols = `id, name, os_type, os_version, platform, status, disk_format, min_disk, min_ram, size, checksum,
	file, kernel, initrd, partition_table, rootfs, cloud_init, unsupported, created`

func (s *Store) ImageUpsert(ctx context.Context, i ecs.Image) error {
	_, err := s.w.ExecContext(ctx, `INSERT OR REPLACE INTO images(`+imageCols+`) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		i.ID, i.Name, i.OSType, i.OSVersion, i.Platform, i.Status, i.DiskFormat, i.MinDiskGB, i.MinRAMMB, i.SizeBytes, i.Checksum,
		i.File, i.Kernel, i.Initrd, i.PartitionTable, i.RootFS, b2i(i.CloudInit), i.Unsupported, ms(i.Created))
	return err
}

type scanner interface{ Scan(dest ...any) error }

func scanImage(sc scanner) (ecs.Image, error) {
	var i ecs.Image
	var cloudInit int
	var created int64
	err := sc.Scan(&i.ID, &i.Name, &i.OSType, &i.OSVersion, &i.Platform, &i.Status, &i.DiskFormat, &i.MinDiskGB, &i.MinRAMMB,
		&i.SizeBytes, &i.Checksum, &i.File, &i.Kernel, &i.Initrd, &i.PartitionTable, &i.RootFS, &cloudInit, &i.Unsupported, &created)
	i.CloudInit = cloudInit != 0
	i.Created = fromMS(created)
	return i, err
}

func (s *Store) ImageGet(ctx context.Context, id string) (ecs.Image, error) {
	i, err := scanImage(s.r.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return i, notFound("image", id)
	}
	return i, err
}

func (s *Store) ImageList(ctx context.Context) ([]ecs.Image, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+imageCols+` FROM images ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ecs.Image
	for rows.Next() {
		i, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// ---- servers

const serverCols = `id, project_id, user_id, name, vm_state, task_state, power_state, locked, image_id, flavor_id, key_name,
	system_volume_id, reinstall_failed, task_job_id, task_owner, fault, metadata, az, vpc_id, addr, access_port, launch_index,
	created, updated, launched_at, host`

func scanServer(sc scanner) (ecs.Server, error) {
	var s ecs.Server
	var locked, failed int
	var meta string
	var created, updated, launched int64
	var owner string
	err := sc.Scan(&s.ID, &s.ProjectID, &s.UserID, &s.Name, &s.VMState, &s.TaskState, &s.PowerState, &locked, &s.ImageID,
		&s.FlavorID, &s.KeyName, &s.SystemVolumeID, &failed, &s.TaskJobID, &owner, &s.Fault, &meta, &s.AZ, &s.VPCID, &s.Addr,
		&s.AccessPort, &s.LaunchIndex, &created, &updated, &launched, &s.Host)
	if err != nil {
		return s, err
	}
	s.Locked = locked != 0
	s.ReinstallFailed = failed != 0
	s.Created, s.Updated, s.LaunchedAt = fromMS(created), fromMS(updated), fromMS(launched)
	if meta != "" && meta != "{}" {
		if err := json.Unmarshal([]byte(meta), &s.Metadata); err != nil {
			return s, fmt.Errorf("server %s metadata: %w", s.ID, err)
		}
	}
	return s, nil
}

func serverArgs(s *ecs.Server) []any {
	meta := "{}"
	if len(s.Metadata) > 0 {
		b, _ := json.Marshal(s.Metadata)
		meta = string(b)
	}
	return []any{s.ProjectID, s.UserID, s.Name, ecs.Status(s.VMState, s.TaskState), s.VMState, s.TaskState, s.PowerState,
		b2i(s.Locked), s.ImageID, s.FlavorID, s.KeyName, s.SystemVolumeID, b2i(s.ReinstallFailed), s.TaskJobID, s.Fault, meta,
		s.AZ, s.VPCID, s.Addr, s.AccessPort, s.LaunchIndex, ms(s.Created), ms(s.Updated), ms(s.LaunchedAt), s.Host}
}

func getServer(ctx context.Context, q queryer, projectID, id string) (ecs.Server, error) {
	var row *sql.Row
	if projectID == "" {
		row = q.QueryRowContext(ctx, `SELECT `+serverCols+` FROM servers WHERE id = ?`, id)
	} else {
		row = q.QueryRowContext(ctx, `SELECT `+serverCols+` FROM servers WHERE id = ? AND project_id = ?`, id, projectID)
	}
	s, err := scanServer(row)
	if errors.Is(err, sql.ErrNoRows) {
		return s, notFound("server", id)
	}
	return s, err
}

func (s *Store) ServerGet(ctx context.Context, projectID, id string) (ecs.Server, error) {
	if projectID == "" {
		return ecs.Server{}, notFound("server", id)
	}
	return getServer(ctx, s.r, projectID, id)
}

func (s *Store) ServerList(ctx context.Context, p store.ServerListParams) ([]ecs.Server, int, error) {
	where := ` WHERE project_id = ?`
	args := []any{p.ProjectID}
	if p.Name != "" {
		where += ` AND instr(name, ?) > 0`
		args = append(args, p.Name)
	}
	if p.Status != "" {
		where += ` AND status = ?`
		args = append(args, p.Status)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM servers`+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+serverCols+` FROM servers`+where+` ORDER BY seq DESC LIMIT ? OFFSET ?`,
		append(args, limit, p.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	out, err := collectServers(rows)
	return out, total, err
}

func collectServers(rows *sql.Rows) ([]ecs.Server, error) {
	defer rows.Close()
	var out []ecs.Server
	for rows.Next() {
		sv, err := scanServer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, rows.Err()
}

func (s *Store) ServerListAll(ctx context.Context) ([]ecs.Server, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+serverCols+` FROM servers ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	return collectServers(rows)
}

func (t *tx) ServerGet(ctx context.Context, projectID, id string) (ecs.Server, error) {
	if projectID == "" {
		return ecs.Server{}, notFound("server", id)
	}
	return getServer(ctx, t.q, projectID, id)
}

func (t *tx) ServerGetByID(ctx context.Context, id string) (ecs.Server, error) {
	return getServer(ctx, t.q, "", id)
}

func (t *tx) ServerInsert(ctx context.Context, s *ecs.Server) error {
	args := append([]any{s.ID}, serverArgs(s)...)
	_, err := t.q.ExecContext(ctx, `INSERT INTO servers(id, project_id, user_id, name, status, vm_state, task_state, power_state,
		locked, image_id, flavor_id, key_name, system_volume_id, reinstall_failed, task_job_id, fault, metadata, az, vpc_id, addr,
		access_port, launch_index, created, updated, launched_at, host, task_owner)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'')`, args...)
	if isUnique(err) {
		return fmt.Errorf("server %q: %w", s.ID, ecs.ErrConflict)
	}
	return err
}

// ServerUpdate writes every column but the task owner, which only
// ServerSetOwner changes (and clears when the task ends).
func (t *tx) ServerUpdate(ctx context.Context, s *ecs.Server) error {
	args := append(serverArgs(s)[1:], s.TaskJobID, s.ID, s.ProjectID)
	res, err := t.q.ExecContext(ctx, `UPDATE servers SET user_id=?, name=?, status=?, vm_state=?, task_state=?, power_state=?,
		locked=?, image_id=?, flavor_id=?, key_name=?, system_volume_id=?, reinstall_failed=?, task_job_id=?, fault=?, metadata=?,
		az=?, vpc_id=?, addr=?, access_port=?, launch_index=?, created=?, updated=?, launched_at=?, host=?,
		task_owner = CASE WHEN ? = '' THEN '' ELSE task_owner END
		WHERE id=? AND project_id=?`, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("server", s.ID)
	}
	return nil
}

func (t *tx) ServerDelete(ctx context.Context, id string) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM servers WHERE id = ?`, id); err != nil {
		return err
	}
	return t.allocationFree(ctx, id)
}

func (t *tx) ServerFence(ctx context.Context, serverID, token string) error {
	var owner string
	err := t.q.QueryRowContext(ctx, `SELECT task_owner FROM servers WHERE id = ?`, serverID).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("server %s gone: %w", serverID, ecs.ErrFenced)
	}
	if err != nil {
		return err
	}
	if owner != token {
		return fmt.Errorf("server %s owned by another run: %w", serverID, ecs.ErrFenced)
	}
	return nil
}

func (t *tx) ServerSetOwner(ctx context.Context, serverID, jobID, token string) error {
	res, err := t.q.ExecContext(ctx, `UPDATE servers SET task_owner = ? WHERE id = ? AND task_job_id = ?`, token, serverID, jobID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("server %s is not under job %s: %w", serverID, jobID, ecs.ErrFenced)
	}
	return nil
}

// ---- volumes

const volumeCols = `id, project_id, server_id, image_id, size_gb, volume_type, status, device, created, host`

func scanVolume(sc scanner) (ecs.Volume, error) {
	var v ecs.Volume
	var created int64
	err := sc.Scan(&v.ID, &v.ProjectID, &v.ServerID, &v.ImageID, &v.SizeGB, &v.VolumeType, &v.Status, &v.Device, &created, &v.Host)
	v.Created = fromMS(created)
	return v, err
}

func getVolume(ctx context.Context, q queryer, id string) (ecs.Volume, error) {
	v, err := scanVolume(q.QueryRowContext(ctx, `SELECT `+volumeCols+` FROM volumes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound("volume", id)
	}
	return v, err
}

func (s *Store) VolumeGet(ctx context.Context, id string) (ecs.Volume, error) {
	return getVolume(ctx, s.r, id)
}
func (t *tx) VolumeGet(ctx context.Context, id string) (ecs.Volume, error) {
	return getVolume(ctx, t.q, id)
}

func (s *Store) VolumeListAll(ctx context.Context) ([]ecs.Volume, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+volumeCols+` FROM volumes ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ecs.Volume
	for rows.Next() {
		v, err := scanVolume(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (t *tx) VolumeUpsert(ctx context.Context, v *ecs.Volume) error {
	_, err := t.q.ExecContext(ctx, `INSERT OR REPLACE INTO volumes(`+volumeCols+`) VALUES(?,?,?,?,?,?,?,?,?,?)`,
		v.ID, v.ProjectID, v.ServerID, v.ImageID, v.SizeGB, v.VolumeType, v.Status, v.Device, ms(v.Created), v.Host)
	return err
}

func (t *tx) VolumeDelete(ctx context.Context, id string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM volumes WHERE id = ?`, id)
	return err
}

// ---- key pairs

const keypairCols = `id, project_id, user_id, name, public_key, fingerprint, type, created`

func scanKeypair(sc scanner) (ecs.Keypair, error) {
	var k ecs.Keypair
	var created int64
	err := sc.Scan(&k.ID, &k.ProjectID, &k.UserID, &k.Name, &k.PublicKey, &k.Fingerprint, &k.Type, &created)
	k.Created = fromMS(created)
	return k, err
}

func getKeypair(ctx context.Context, q queryer, projectID, userID, name string) (ecs.Keypair, error) {
	k, err := scanKeypair(q.QueryRowContext(ctx, `SELECT `+keypairCols+` FROM keypairs WHERE project_id = ? AND user_id = ? AND name = ?`,
		projectID, userID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return k, notFound("keypair", name)
	}
	return k, err
}

func (s *Store) KeypairGet(ctx context.Context, projectID, userID, name string) (ecs.Keypair, error) {
	return getKeypair(ctx, s.r, projectID, userID, name)
}

func (t *tx) KeypairGet(ctx context.Context, projectID, userID, name string) (ecs.Keypair, error) {
	return getKeypair(ctx, t.q, projectID, userID, name)
}

func (s *Store) KeypairList(ctx context.Context, projectID, userID string) ([]ecs.Keypair, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+keypairCols+` FROM keypairs WHERE project_id = ? AND user_id = ? ORDER BY name`,
		projectID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ecs.Keypair
	for rows.Next() {
		k, err := scanKeypair(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (t *tx) KeypairInsert(ctx context.Context, k *ecs.Keypair) error {
	res, err := t.q.ExecContext(ctx, `INSERT INTO keypairs(project_id, user_id, name, public_key, fingerprint, type, created)
		VALUES(?,?,?,?,?,?,?)`, k.ProjectID, k.UserID, k.Name, k.PublicKey, k.Fingerprint, k.Type, ms(k.Created))
	if isUnique(err) {
		return fmt.Errorf("keypair %q: %w", k.Name, ecs.ErrConflict)
	}
	if err != nil {
		return err
	}
	k.ID, _ = res.LastInsertId()
	return nil
}

func (t *tx) KeypairDelete(ctx context.Context, projectID, userID, name string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM keypairs WHERE project_id = ? AND user_id = ? AND name = ?`, projectID, userID, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("keypair", name)
	}
	return nil
}
