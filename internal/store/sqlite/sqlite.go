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
	"strings"
	"time"
	"unicode/utf8"

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

// ms and fromMS are the rows' encoding of times, shared by the stores.
var (
	ms     = store.ToMS
	fromMS = store.FromMS
)

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

const serverCols = store.ServerColumns

func scanServer(sc scanner) (ecs.Server, error) {
	var r store.ServerRow
	var locked, failed int
	if err := sc.Scan(r.Targets(&locked, &failed)...); err != nil {
		return r.Server, err
	}
	r.Server.Locked, r.Server.ReinstallFailed = locked != 0, failed != 0
	return r.Decode()
}

func serverArgs(s *ecs.Server) []any {
	meta := "{}"
	if len(s.Metadata) > 0 {
		b, _ := json.Marshal(s.Metadata)
		meta = string(b)
	}
	return []any{s.ProjectID, s.UserID, s.Name, ecs.Status(s.VMState, s.TaskState), s.VMState, s.TaskState, s.PowerState,
		b2i(s.Locked), s.ImageID, s.FlavorID, s.KeyName, s.SystemVolumeID, b2i(s.ReinstallFailed), s.TaskJobID, s.Fault, meta,
		s.AZ, s.VPCID, s.Addr, s.AccessPort, s.LaunchIndex, ms(s.Created), ms(s.Updated), ms(s.LaunchedAt), s.Host,
		store.EncodeServerDetails(s)}
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
	where, args := serverFilter(p)
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM servers`+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if p.Marker != "" {
		var seq int64
		err := s.r.QueryRowContext(ctx, `SELECT seq FROM servers WHERE project_id = ? AND id = ?`, p.ProjectID, p.Marker).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, notFound("marker server", p.Marker)
		}
		if err != nil {
			return nil, 0, err
		}
		where += ` AND seq < ?`
		args = append(args, seq)
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

// serverFilter is the WHERE clause of a server list: the project's
// servers, then one condition per filter, each served by an index (the
// fuzzy name and address patterns excepted).
func serverFilter(p store.ServerListParams) (string, []any) {
	where := ` WHERE project_id = ?`
	args := []any{p.ProjectID}
	add := func(cond string, a ...any) {
		where += ` AND ` + cond
		args = append(args, a...)
	}
	if strings.IndexByte(p.Name, 0) >= 0 || strings.IndexByte(p.IP, 0) >= 0 || strings.IndexByte(p.NameContains, 0) >= 0 {
		// GLOB stops at a NUL; no name or address holds one.
		add(`0`)
	}
	if p.Name != "" {
		if g, ok := searchGlob(p.Name); ok {
			add(`seq IN (SELECT rowid FROM server_search WHERE name GLOB ?)`, g)
		}
		add(`name GLOB ?`, store.GlobPattern(p.Name))
	}
	if p.Status != "" {
		add(`status = ?`, p.Status)
	}
	if p.FlavorID != "" {
		add(`flavor_id = ?`, p.FlavorID)
	}
	if p.ReservationID != "" {
		add(`reservation_id = ?`, p.ReservationID)
	}
	// The address filters look in ports and in address_conflicts (the
	// addresses of servers made before issue 11 that another such server
	// holds; store/legacy.go).
	if p.IPEq != "" {
		add(`id IN (SELECT server_id FROM ports WHERE project_id = ? AND ip = ?
			UNION ALL SELECT server_id FROM address_conflicts WHERE project_id = ? AND ip = ?)`,
			p.ProjectID, p.IPEq, p.ProjectID, p.IPEq)
	}
	if p.IP != "" {
		pattern := store.GlobPattern(p.IP)
		if g, ok := searchGlob(p.IP); ok {
			add(`id IN (SELECT server_id FROM ports WHERE seq IN (SELECT rowid FROM port_search WHERE ip GLOB ?)
				AND project_id = ? AND ip GLOB ?
				UNION ALL SELECT server_id FROM address_conflicts WHERE project_id = ? AND ip GLOB ?)`,
				g, p.ProjectID, pattern, p.ProjectID, pattern)
		} else {
			add(`id IN (SELECT server_id FROM ports WHERE project_id = ? AND ip GLOB ?
				UNION ALL SELECT server_id FROM address_conflicts WHERE project_id = ? AND ip GLOB ?)`,
				p.ProjectID, pattern, p.ProjectID, pattern)
		}
	}
	if p.NameContains != "" {
		// The pieces of the name are literal too: they narrow it the same.
		if g, ok := searchGlob(p.NameContains); ok {
			add(`seq IN (SELECT rowid FROM server_search WHERE name GLOB ?)`, g)
		}
		add(`name GLOB ?`, store.GlobLiteral(p.NameContains))
	}
	if len(p.ServerIDs) > 0 {
		add(`id IN (?`+strings.Repeat(`,?`, len(p.ServerIDs)-1)+`)`, anys(p.ServerIDs)...)
	}
	matchCond := func(m store.TagMatch) (string, []any) {
		c := `id IN (SELECT server_id FROM server_tags WHERE project_id = ? AND key = ?`
		a := []any{p.ProjectID, m.Key}
		if len(m.Values) > 0 {
			c += ` AND value IN (?` + strings.Repeat(`,?`, len(m.Values)-1) + `)`
			a = append(a, anys(m.Values)...)
		}
		return c + `)`, a
	}
	for _, m := range p.TagMatches {
		c, a := matchCond(m)
		add(c, a...)
	}
	if len(p.NotTagMatches) > 0 {
		var conds []string
		var a []any
		for _, m := range p.NotTagMatches {
			c, ca := matchCond(m)
			conds = append(conds, c)
			a = append(a, ca...)
		}
		add(`NOT (`+strings.Join(conds, ` AND `)+`)`, a...)
	}
	tagCond := func(tag string) (string, []any) {
		f := store.ParseTagFilter(tag)
		if f.AnyValue {
			return `id IN (SELECT server_id FROM server_tags WHERE project_id = ? AND key = ?)`, []any{p.ProjectID, f.Key}
		}
		return `id IN (SELECT server_id FROM server_tags WHERE project_id = ? AND key = ? AND value = ?)`,
			[]any{p.ProjectID, f.Key, f.Value}
	}
	for _, tag := range p.Tags {
		c, a := tagCond(tag)
		add(c, a...)
	}
	if len(p.NotTags) > 0 {
		var conds []string
		var a []any
		for _, tag := range p.NotTags {
			c, ca := tagCond(tag)
			conds = append(conds, c)
			a = append(a, ca...)
		}
		add(`NOT (`+strings.Join(conds, ` AND `)+`)`, a...)
	}
	return where, args
}

// searchGlob is the GLOB pattern that finds, through a trigram index
// (server_search, port_search), the candidates of a name or IP pattern: the
// pattern's literal pieces in order, "*" between. Every string that matches
// the pattern contains them, so the candidates are never fewer than the
// matches; the pattern itself then decides. ok is false when no piece is
// three characters long: a trigram index cannot narrow such a pattern, and
// the filter scans the project's rows instead.
func searchGlob(p string) (string, bool) {
	pieces := store.PatternPieces(p)
	ok := false
	for _, pc := range pieces {
		if utf8.RuneCountInString(pc) >= 3 {
			ok = true
		}
	}
	return "*" + strings.Join(pieces, "*") + "*", ok
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
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

func (s *Store) ServerTagList(ctx context.Context, projectID string) ([]ecs.Tag, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT key, value FROM server_tags WHERE project_id = ? ORDER BY key, value`,
		projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ecs.Tag
	for rows.Next() {
		var tg ecs.Tag
		if err := rows.Scan(&tg.Key, &tg.Value); err != nil {
			return nil, err
		}
		out = append(out, tg)
	}
	return out, rows.Err()
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
	nics, tags := store.EncodeServerJSON(s)
	args := append(append([]any{s.ID}, serverArgs(s)...), s.ReservationID, nics, tags)
	res, err := t.q.ExecContext(ctx, `INSERT INTO servers(id, project_id, user_id, name, status, vm_state, task_state, power_state,
		locked, image_id, flavor_id, key_name, system_volume_id, reinstall_failed, task_job_id, fault, metadata, az, vpc_id, addr,
		access_port, launch_index, created, updated, launched_at, host, details, reservation_id, nics, tags, task_owner)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'')`, args...)
	if isUnique(err) {
		return fmt.Errorf("server %q: %w", s.ID, ecs.ErrConflict)
	}
	if err != nil {
		return err
	}
	if err := t.searchAdd(ctx, "server_search", lastID(res), s.Name); err != nil {
		return err
	}
	for _, n := range s.NICs {
		res, err := t.q.ExecContext(ctx, `INSERT INTO ports(port_id, server_id, project_id, subnet_id, ip) VALUES(?,?,?,?,?)`,
			n.PortID, s.ID, s.ProjectID, n.SubnetID, n.IP)
		if isUnique(err) {
			return &store.AddressTakenError{SubnetID: n.SubnetID, IP: n.IP}
		}
		if err != nil {
			return err
		}
		if err := t.searchAdd(ctx, "port_search", lastID(res), n.IP); err != nil {
			return err
		}
	}
	return t.insertTags(ctx, s.ProjectID, s.ID, s.Tags)
}

func (t *tx) insertTags(ctx context.Context, projectID, serverID string, tags []ecs.Tag) error {
	for _, tg := range tags {
		if _, err := t.q.ExecContext(ctx, `INSERT INTO server_tags(server_id, project_id, key, value) VALUES(?,?,?,?)`,
			serverID, projectID, tg.Key, tg.Value); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) ServerTagsSet(ctx context.Context, projectID, serverID string, tags []ecs.Tag) error {
	_, enc := store.EncodeServerJSON(&ecs.Server{Tags: tags})
	res, err := t.q.ExecContext(ctx, `UPDATE servers SET tags = ? WHERE id = ? AND project_id = ?`, enc, serverID, projectID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("server", serverID)
	}
	if _, err := t.q.ExecContext(ctx, `DELETE FROM server_tags WHERE server_id = ?`, serverID); err != nil {
		return err
	}
	return t.insertTags(ctx, projectID, serverID, tags)
}

func (t *tx) SubnetEnsure(ctx context.Context, sn ecs.Subnet) (ecs.Subnet, error) {
	if _, err := t.q.ExecContext(ctx, `INSERT INTO subnets(project_id, id, vpc_id, cidr, created) VALUES(?,?,?,?,?)
		ON CONFLICT DO NOTHING`, sn.ProjectID, sn.ID, sn.VPCID, sn.CIDR, ms(sn.Created)); err != nil {
		return sn, err
	}
	var created int64
	err := t.q.QueryRowContext(ctx, `SELECT vpc_id, cidr, created FROM subnets WHERE project_id = ? AND id = ?`, sn.ProjectID, sn.ID).
		Scan(&sn.VPCID, &sn.CIDR, &created)
	sn.Created = fromMS(created)
	return sn, err
}

func (t *tx) SubnetAddresses(ctx context.Context, projectID, subnetID string) ([]string, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT ip FROM ports WHERE project_id = ? AND subnet_id = ?`, projectID, subnetID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ip string
		if err := rows.Scan(&ip); err != nil {
			return nil, err
		}
		out = append(out, ip)
	}
	return out, rows.Err()
}

// ServerUpdate writes every column but the task owner, which only
// ServerSetOwner changes (and clears when the task ends).
func (t *tx) ServerUpdate(ctx context.Context, s *ecs.Server) error {
	if err := t.searchRename(ctx, s.ID, s.ProjectID, s.Name); err != nil {
		return err
	}
	args := append(serverArgs(s)[1:], s.TaskJobID, s.ID, s.ProjectID)
	res, err := t.q.ExecContext(ctx, `UPDATE servers SET user_id=?, name=?, status=?, vm_state=?, task_state=?, power_state=?,
		locked=?, image_id=?, flavor_id=?, key_name=?, system_volume_id=?, reinstall_failed=?, task_job_id=?, fault=?, metadata=?,
		az=?, vpc_id=?, addr=?, access_port=?, launch_index=?, created=?, updated=?, launched_at=?, host=?, details=?,
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
	if err := t.searchDropServer(ctx, id); err != nil {
		return err
	}
	for _, q := range []string{`DELETE FROM servers WHERE id = ?`, `DELETE FROM ports WHERE server_id = ?`,
		`DELETE FROM server_tags WHERE server_id = ?`, `DELETE FROM address_conflicts WHERE server_id = ?`} {
		if _, err := t.q.ExecContext(ctx, q, id); err != nil {
			return err
		}
	}
	return t.AllocationFree(ctx, id)
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

const volumeCols = `id, project_id, server_id, image_id, size_gb, volume_type, status, device, created, host, name`

func scanVolume(sc scanner) (ecs.Volume, error) {
	var v ecs.Volume
	var created int64
	err := sc.Scan(&v.ID, &v.ProjectID, &v.ServerID, &v.ImageID, &v.SizeGB, &v.VolumeType, &v.Status, &v.Device, &created, &v.Host,
		&v.Name)
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
	return listVolumes(ctx, s.r, `SELECT `+volumeCols+` FROM volumes ORDER BY created, id`)
}

func (s *Store) VolumeList(ctx context.Context, projectID string) ([]ecs.Volume, error) {
	return listVolumes(ctx, s.r, `SELECT `+volumeCols+` FROM volumes WHERE project_id = ? ORDER BY created, id`, projectID)
}

func (t *tx) VolumeList(ctx context.Context, projectID string) ([]ecs.Volume, error) {
	return listVolumes(ctx, t.q, `SELECT `+volumeCols+` FROM volumes WHERE project_id = ? ORDER BY created, id`, projectID)
}

func listVolumes(ctx context.Context, q queryer, query string, args ...any) ([]ecs.Volume, error) {
	rows, err := q.QueryContext(ctx, query, args...)
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
	_, err := t.q.ExecContext(ctx, `INSERT OR REPLACE INTO volumes(`+volumeCols+`) VALUES(?,?,?,?,?,?,?,?,?,?,?)`,
		v.ID, v.ProjectID, v.ServerID, v.ImageID, v.SizeGB, v.VolumeType, v.Status, v.Device, ms(v.Created), v.Host, v.Name)
	return err
}

func (t *tx) VolumeDelete(ctx context.Context, id string) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM volumes WHERE id = ?`, id); err != nil {
		return err
	}
	return t.AllocationFree(ctx, id)
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

// Analyze refreshes the query planner's statistics (after a bulk load),
// of every table but the search tables' own (FTS5's shadow tables,
// server_search_* and port_search_*). FTS5 looks up each segment with a
// statement whose plan, once this build of SQLite (STAT4) has statistics
// of its table, is made again at every binding: a list by name or address
// would spend most of its time in the SQL parser.
func (s *Store) Analyze(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		AND name NOT LIKE 'server\_search\_%' ESCAPE '\' AND name NOT LIKE 'port\_search\_%' ESCAPE '\'
		AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'`)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := s.w.ExecContext(ctx, `ANALYZE "`+t+`"`); err != nil {
			return err
		}
	}
	return nil
}
