// Package postgres is the Store for several ecsd nodes sharing one
// PostgreSQL database (pgx v5, a pgxpool). It passes the same conformance
// suite (store/storetest) as store/sqlite, and adds what a shared database
// needs: many processes may open it at once, claim jobs at once and write
// the same rows at once.
//
// Promises, and how they are kept:
//   - Migrations (migrations/*.sql, through store/migrate) run at Open under
//     a session advisory lock, so nodes starting together on an empty
//     database apply each migration exactly once; the others wait for the
//     lock (pg_advisory_lock blocks, it does not poll) and find nothing to do.
//   - Write runs fn in one READ COMMITTED transaction in which every read of
//     a row through Tx locks it: servers, jobs and volumes FOR UPDATE, key
//     pairs FOR SHARE (they are only ever read, then inserted or deleted).
//     A Write that reads a row therefore waits for any other Write that
//     read or changed it, then reads the committed version: read-check-update
//     cycles never interleave on the same rows, on one connection or across
//     nodes, and of 50 concurrent reinstalls of one server exactly one finds
//     it idle. Row locks were chosen over SERIALIZABLE: the service's Writes
//     are read-check-update on rows it names, which row locks serialise
//     exactly, whereas SERIALIZABLE would abort and re-run every loser of a
//     hot row (50 reinstalls: up to 49 retries each) and could also abort
//     Writes that touch different rows (predicate locks on index pages).
//   - Two Writes that lock the same rows in opposite orders deadlock;
//     PostgreSQL aborts one (SQLSTATE 40P01) and Write runs that one's fn
//     again on a new transaction, a few times at most (see store.Store.Write).
//   - JobClaim picks runnable jobs with FOR UPDATE SKIP LOCKED, so claimers
//     on any number of nodes never wait for each other and never get the
//     same job; the claim and the tally of the claimed sub-jobs' parents
//     commit together.
//   - Tx.Lock is a transaction-level advisory lock: it serialises Writes on
//     rows that do not exist yet, which row locks cannot.
//   - A unique-key clash is found by its SQLSTATE (23505), never by its text.
//     PostgreSQL aborts a transaction at its first failed statement: after a
//     Tx method returns an error, fn must return an error too (if it does
//     not, the commit fails and Write still returns one).
//   - An error that says the database is out of reach (connection refused
//     or lost, server shutting down) wraps store.ErrUnavailable.
//   - Times are unix milliseconds in BIGINT columns, as in SQLite; job params
//     are BYTEA (kept byte for byte), server metadata JSON in TEXT.
//   - PostgreSQL's TEXT cannot hold NUL bytes or invalid UTF-8, which SQLite
//     keeps: a lookup by such a key finds nothing (ecs.ErrNotFound, as no
//     row can have it) instead of failing.
//   - A Write that inserted a runnable job sends a notification on channel
//     ecsd_jobs as it commits (pg_notify is transactional: a rolled-back
//     Write sends none). JobListen (store.JobNotifier) delivers them to a
//     node's job engine, so that a job submitted on one node wakes the
//     workers of all.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// Config configures a Store.
type Config struct {
	// DSN is a PostgreSQL connection string, as a URL
	// (postgres://USER@HOST:PORT/DB?sslmode=disable) or key=value pairs.
	DSN string
	// MaxConns bounds the pool. Default: the DSN's pool_max_conns when it
	// has one, else DefaultMaxConns.
	MaxConns int32
	// Logger receives migration and listener messages (default slog.Default).
	Logger *slog.Logger
}

// Store is the PostgreSQL Store.
type Store struct {
	pool *pgxpool.Pool
	db   dbq // the pool, its errors classified
	log  *slog.Logger
}

var _ store.Store = (*Store)(nil)

// Open connects to the database and applies its pending migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	switch {
	case cfg.MaxConns > 0:
		pcfg.MaxConns = cfg.MaxConns
	case !dsnHas(cfg.DSN, "pool_max_conns"):
		pcfg.MaxConns = DefaultMaxConns()
	}
	if pcfg.MaxConns < 2 {
		pcfg.MaxConns = 2 // migrations hold one connection for their lock and run on another
	}
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "ecsd"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, db: dbq{pool}, log: cfg.Logger}
	if err := s.migrateUp(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", classify(ctx, err))
	}
	return s, nil
}

// DefaultMaxConns is the pool size of a Store whose DSN sets no
// pool_max_conns: twice GOMAXPROCS, at least 16. pgxpool's own default
// (the larger of 4 and the CPUs) starves a node whose 64 job workers and
// API requests each hold a connection for a statement or a transaction.
// Connections are opened on demand, so an idle node holds few; every
// node's pool together must stay below the server's max_connections
// (PostgreSQL's default: 100).
func DefaultMaxConns() int32 {
	return int32(max(16, 2*runtime.GOMAXPROCS(0)))
}

// dsnHas reports whether the connection string dsn (a URL or key=value
// pairs) sets the parameter key.
func dsnHas(dsn, key string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		return err == nil && u.Query().Has(key)
	}
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, key+"=") {
			return true
		}
	}
	return false
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// querier is what queries need: the pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ms and fromMS are the rows' encoding of times, shared by the stores.
var (
	ms     = store.ToMS
	fromMS = store.FromMS
)

func notFound(what, id string) error {
	return fmt.Errorf("%s %q: %w", what, id, ecs.ErrNotFound)
}

// SQLSTATEs the store acts on.
const (
	uniqueViolation      = "23505"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func isUnique(err error) bool { return sqlState(err) == uniqueViolation }

// retryable reports whether a transaction failed only because it collided
// with another one, so that running it again can succeed.
func retryable(err error) bool {
	c := sqlState(err)
	return c == deadlockDetected || c == serializationFailure
}

// maxWriteRuns bounds how often Write runs fn when its transactions keep
// being chosen as deadlock victims.
const maxWriteRuns = 5

// Write runs fn in one READ COMMITTED transaction whose reads lock the rows
// they read (see the package doc); it runs fn again, on a new transaction,
// when PostgreSQL aborted the previous one to break a deadlock.
func (s *Store) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	for run := 1; ; run++ {
		err := s.writeOnce(ctx, fn)
		if err == nil || !retryable(err) || run == maxWriteRuns || ctx.Err() != nil {
			return err
		}
		// Jittered back-off, so that the victims do not collide again.
		d := time.Duration(rand.Int64N(int64(run) * int64(5*time.Millisecond)))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(tx store.Tx) error) error {
	ptx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", classify(ctx, err))
	}
	t := &tx{q: dbq{ptx}}
	if err := fn(t); err != nil {
		ptx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if t.jobInserted {
		if _, err := ptx.Exec(ctx, `SELECT pg_notify($1, '')`, JobChannel); err != nil {
			ptx.Rollback(context.WithoutCancel(ctx))
			return fmt.Errorf("postgres: notify: %w", err)
		}
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", classify(ctx, err))
	}
	return nil
}

// tx implements store.Tx.
type tx struct {
	q querier
	// jobInserted is set once the transaction inserted a runnable job: its
	// commit notifies the listeners.
	jobInserted bool
	// hostsLocked is set once the transaction holds every host row (see
	// HostAllocate).
	hostsLocked bool
}

// Lock takes a transaction-level advisory lock on a 64-bit hash of key
// (in a namespace of its own); PostgreSQL releases it at commit or
// rollback.
func (t *tx) Lock(ctx context.Context, key string) error {
	_, err := t.q.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ecsd.lock:"+key)
	return err
}

// ---- credentials, projects, images

func (t *tx) CredentialCount(ctx context.Context) (int, error) {
	var n int
	err := t.q.QueryRow(ctx, `SELECT count(*) FROM credentials`).Scan(&n)
	return n, err
}

func (t *tx) CredentialInsert(ctx context.Context, c store.SealedCredential) error {
	_, err := t.q.Exec(ctx, `INSERT INTO credentials(access_key, secret_sealed, project_id, user_id, created) VALUES($1,$2,$3,$4,$5)`,
		c.AccessKey, c.SealedSecret, c.ProjectID, c.UserID, ms(c.Created))
	if isUnique(err) {
		return fmt.Errorf("credential %q: %w", c.AccessKey, ecs.ErrConflict)
	}
	return err
}

func (s *Store) CredentialGet(ctx context.Context, ak string) (store.SealedCredential, error) {
	var c store.SealedCredential
	if unstorable(ak) {
		return c, notFound("credential", ak)
	}
	var created int64
	err := s.db.QueryRow(ctx, `SELECT access_key, secret_sealed, project_id, user_id, created FROM credentials WHERE access_key = $1`, ak).
		Scan(&c.AccessKey, &c.SealedSecret, &c.ProjectID, &c.UserID, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, notFound("credential", ak)
	}
	c.Created = fromMS(created)
	return c, err
}

func (s *Store) CredentialCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM credentials`).Scan(&n)
	return n, err
}

func (s *Store) CredentialList(ctx context.Context) ([]store.SealedCredential, error) {
	rows, err := s.db.Query(ctx, `SELECT access_key, secret_sealed, project_id, user_id, created FROM credentials ORDER BY access_key`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SealedCredential, error) {
		var c store.SealedCredential
		var created int64
		err := r.Scan(&c.AccessKey, &c.SealedSecret, &c.ProjectID, &c.UserID, &created)
		c.Created = fromMS(created)
		return c, err
	})
}

func (t *tx) ProjectInsert(ctx context.Context, id, name string, created time.Time) error {
	_, err := t.q.Exec(ctx, `INSERT INTO projects(id, name, created) VALUES($1,$2,$3)`, id, name, ms(created))
	if isUnique(err) {
		return fmt.Errorf("project %q: %w", id, ecs.ErrConflict)
	}
	return err
}

const imageCols = `id, name, os_type, os_version, platform, status, disk_format, min_disk, min_ram, size, checksum,
	file, kernel, initrd, partition_table, rootfs, cloud_init, unsupported, created`

func (s *Store) ImageUpsert(ctx context.Context, i ecs.Image) error {
	_, err := s.db.Exec(ctx, `INSERT INTO images(`+imageCols+`) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)
		ON CONFLICT (id) DO UPDATE SET name=EXCLUDED.name, os_type=EXCLUDED.os_type, os_version=EXCLUDED.os_version,
		platform=EXCLUDED.platform, status=EXCLUDED.status, disk_format=EXCLUDED.disk_format, min_disk=EXCLUDED.min_disk,
		min_ram=EXCLUDED.min_ram, size=EXCLUDED.size, checksum=EXCLUDED.checksum, file=EXCLUDED.file, kernel=EXCLUDED.kernel,
		initrd=EXCLUDED.initrd, partition_table=EXCLUDED.partition_table, rootfs=EXCLUDED.rootfs, cloud_init=EXCLUDED.cloud_init,
		unsupported=EXCLUDED.unsupported, created=EXCLUDED.created`,
		i.ID, i.Name, i.OSType, i.OSVersion, i.Platform, i.Status, i.DiskFormat, i.MinDiskGB, i.MinRAMMB, i.SizeBytes, i.Checksum,
		i.File, i.Kernel, i.Initrd, i.PartitionTable, i.RootFS, i.CloudInit, i.Unsupported, ms(i.Created))
	return err
}

func scanImage(sc pgx.Row) (ecs.Image, error) {
	var i ecs.Image
	var created int64
	err := sc.Scan(&i.ID, &i.Name, &i.OSType, &i.OSVersion, &i.Platform, &i.Status, &i.DiskFormat, &i.MinDiskGB, &i.MinRAMMB,
		&i.SizeBytes, &i.Checksum, &i.File, &i.Kernel, &i.Initrd, &i.PartitionTable, &i.RootFS, &i.CloudInit, &i.Unsupported, &created)
	i.Created = fromMS(created)
	return i, err
}

func (s *Store) ImageGet(ctx context.Context, id string) (ecs.Image, error) {
	if unstorable(id) {
		return ecs.Image{}, notFound("image", id)
	}
	i, err := scanImage(s.db.QueryRow(ctx, `SELECT `+imageCols+` FROM images WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return i, notFound("image", id)
	}
	return i, err
}

func (s *Store) ImageList(ctx context.Context) ([]ecs.Image, error) {
	rows, err := s.db.Query(ctx, `SELECT `+imageCols+` FROM images ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ecs.Image, error) { return scanImage(r) })
}

// ---- servers

const serverCols = store.ServerColumns

func scanServer(sc pgx.Row) (ecs.Server, error) {
	var r store.ServerRow
	if err := sc.Scan(r.Targets(&r.Server.Locked, &r.Server.ReinstallFailed)...); err != nil {
		return r.Server, err
	}
	return r.Decode()
}

// serverArgs are the arguments of every column but id and task_owner, in
// the order of the INSERT and UPDATE below.
func serverArgs(s *ecs.Server) []any {
	meta := "{}"
	if len(s.Metadata) > 0 {
		b, _ := json.Marshal(s.Metadata)
		meta = string(b)
	}
	return []any{s.ProjectID, s.UserID, s.Name, ecs.Status(s.VMState, s.TaskState), s.VMState, s.TaskState, s.PowerState,
		s.Locked, s.ImageID, s.FlavorID, s.KeyName, s.SystemVolumeID, s.ReinstallFailed, s.TaskJobID, s.Fault, meta,
		s.AZ, s.VPCID, s.Addr, s.AccessPort, s.LaunchIndex, ms(s.Created), ms(s.Updated), ms(s.LaunchedAt), s.Host,
		store.EncodeServerDetails(s)}
}

// getServer reads a server, of any project when projectID is "". lock is
// "" or a locking clause.
func getServer(ctx context.Context, q querier, projectID, id, lock string) (ecs.Server, error) {
	if unstorable(projectID, id) {
		return ecs.Server{}, notFound("server", id)
	}
	var row pgx.Row
	if projectID == "" {
		row = q.QueryRow(ctx, `SELECT `+serverCols+` FROM servers WHERE id = $1`+lock, id)
	} else {
		row = q.QueryRow(ctx, `SELECT `+serverCols+` FROM servers WHERE id = $1 AND project_id = $2`+lock, id, projectID)
	}
	s, err := scanServer(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, notFound("server", id)
	}
	return s, err
}

const (
	forUpdate = ` FOR UPDATE`
	forShare  = ` FOR SHARE`
)

func (s *Store) ServerGet(ctx context.Context, projectID, id string) (ecs.Server, error) {
	if projectID == "" {
		return ecs.Server{}, notFound("server", id)
	}
	return getServer(ctx, s.db, projectID, id, "")
}

func (s *Store) ServerList(ctx context.Context, p store.ServerListParams) ([]ecs.Server, int, error) {
	keys := append([]string{p.ProjectID, p.Name, p.NameContains, p.Status, p.FlavorID, p.IP, p.IPEq, p.ReservationID, p.Marker},
		append(append(slices.Clone(p.ServerIDs), p.Tags...), p.NotTags...)...)
	for _, m := range append(slices.Clone(p.TagMatches), p.NotTagMatches...) {
		keys = append(append(keys, m.Key), m.Values...)
	}
	if unstorable(keys...) {
		if p.Marker != "" && unstorable(p.Marker) {
			return nil, 0, notFound("marker server", p.Marker)
		}
		return nil, 0, nil
	}
	where, args := serverFilter(p)
	countWhere, countArgs := where, slices.Clone(args)
	if p.Marker != "" {
		var seq int64
		err := s.db.QueryRow(ctx, `SELECT seq FROM servers WHERE project_id = $1 AND id = $2`, p.ProjectID, p.Marker).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, 0, notFound("marker server", p.Marker)
		}
		if err != nil {
			return nil, 0, err
		}
		args = append(args, seq)
		where += fmt.Sprintf(` AND seq < $%d`, len(args))
	}
	// One statement, one snapshot: the count (taken before LIMIT) and the
	// page agree. With a marker the count is of every match, so it is
	// taken on its own.
	var limit *int64
	if p.Limit > 0 {
		l := int64(p.Limit)
		limit = &l
	}
	n := len(args)
	rows, err := s.db.Query(ctx, `SELECT count(*) OVER (), `+serverCols+` FROM servers`+where+
		fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d OFFSET $%d`, n+1, n+2), append(args, limit, int64(p.Offset))...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []ecs.Server
	total := -1
	for rows.Next() {
		sv, err := scanServer(countedRow{rows, &total})
		if err != nil {
			return nil, 0, err
		}
		out = append(out, sv)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if total < 0 || p.Marker != "" {
		if err := s.db.QueryRow(ctx, `SELECT count(*) FROM servers`+countWhere, countArgs...).Scan(&total); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// serverFilter is the WHERE clause of a server list: the project's
// servers, then one condition per filter, each served by an index (the
// fuzzy name and address patterns excepted).
func serverFilter(p store.ServerListParams) (string, []any) {
	where := ` WHERE project_id = $1`
	args := []any{p.ProjectID}
	arg := func(a any) string {
		args = append(args, a)
		return fmt.Sprintf("$%d", len(args))
	}
	add := func(cond string) { where += ` AND ` + cond }
	if p.Name != "" {
		add(`name LIKE ` + arg(store.LikePattern(p.Name)) + ` ESCAPE '\'`)
	}
	if p.Status != "" {
		add(`status = ` + arg(p.Status))
	}
	if p.FlavorID != "" {
		add(`flavor_id = ` + arg(p.FlavorID))
	}
	if p.ReservationID != "" {
		add(`reservation_id = ` + arg(p.ReservationID))
	}
	// The address filters look in ports and in address_conflicts (the
	// addresses of servers made before issue 11 that another such server
	// holds; store/legacy.go). The pattern goes through ports_ip_trgm.
	if p.IPEq != "" {
		a := arg(p.IPEq)
		add(`id IN (SELECT server_id FROM ports WHERE project_id = $1 AND ip = ` + a + `
			UNION ALL SELECT server_id FROM address_conflicts WHERE project_id = $1 AND ip = ` + a + `)`)
	}
	if p.IP != "" {
		a := arg(store.LikePattern(p.IP))
		add(`id IN (SELECT server_id FROM ports WHERE project_id = $1 AND ip LIKE ` + a + ` ESCAPE '\'
			UNION ALL SELECT server_id FROM address_conflicts WHERE project_id = $1 AND ip LIKE ` + a + ` ESCAPE '\')`)
	}
	if p.NameContains != "" {
		add(`name LIKE ` + arg(store.LikeLiteral(p.NameContains)) + ` ESCAPE '\'`)
	}
	if len(p.ServerIDs) > 0 {
		add(`id = ANY(` + arg(p.ServerIDs) + `)`)
	}
	matchCond := func(m store.TagMatch) string {
		c := `id IN (SELECT server_id FROM server_tags WHERE project_id = $1 AND key = ` + arg(m.Key)
		if len(m.Values) > 0 {
			c += ` AND value = ANY(` + arg(m.Values) + `)`
		}
		return c + `)`
	}
	for _, m := range p.TagMatches {
		add(matchCond(m))
	}
	if len(p.NotTagMatches) > 0 {
		var conds []string
		for _, m := range p.NotTagMatches {
			conds = append(conds, matchCond(m))
		}
		add(`NOT (` + strings.Join(conds, ` AND `) + `)`)
	}
	tagCond := func(tag string) string {
		f := store.ParseTagFilter(tag)
		if f.AnyValue {
			return `id IN (SELECT server_id FROM server_tags WHERE project_id = $1 AND key = ` + arg(f.Key) + `)`
		}
		return `id IN (SELECT server_id FROM server_tags WHERE project_id = $1 AND key = ` + arg(f.Key) + ` AND value = ` +
			arg(f.Value) + `)`
	}
	for _, tag := range p.Tags {
		add(tagCond(tag))
	}
	if len(p.NotTags) > 0 {
		var conds []string
		for _, tag := range p.NotTags {
			conds = append(conds, tagCond(tag))
		}
		add(`NOT (` + strings.Join(conds, ` AND `) + `)`)
	}
	return where, args
}

// countedRow scans a row whose first column is a count, then a server.
type countedRow struct {
	rows  pgx.Rows
	count *int
}

func (c countedRow) Scan(dest ...any) error { return c.rows.Scan(append([]any{c.count}, dest...)...) }

func (s *Store) ServerListAll(ctx context.Context) ([]ecs.Server, error) {
	rows, err := s.db.Query(ctx, `SELECT `+serverCols+` FROM servers ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ecs.Server, error) { return scanServer(r) })
}

func (s *Store) ServerTagList(ctx context.Context, projectID string) ([]ecs.Tag, error) {
	if unstorable(projectID) {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT key COLLATE "C", value COLLATE "C" FROM server_tags WHERE project_id = $1
		GROUP BY 1, 2 ORDER BY 1, 2`,
		projectID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ecs.Tag, error) {
		var tg ecs.Tag
		err := r.Scan(&tg.Key, &tg.Value)
		return tg, err
	})
}

func (t *tx) ServerGet(ctx context.Context, projectID, id string) (ecs.Server, error) {
	if projectID == "" {
		return ecs.Server{}, notFound("server", id)
	}
	return getServer(ctx, t.q, projectID, id, forUpdate)
}

func (t *tx) ServerGetByID(ctx context.Context, id string) (ecs.Server, error) {
	return getServer(ctx, t.q, "", id, forUpdate)
}

func (t *tx) ServerInsert(ctx context.Context, s *ecs.Server) error {
	nics, tags := store.EncodeServerJSON(s)
	args := append(append([]any{s.ID}, serverArgs(s)...), s.ReservationID, nics, tags)
	_, err := t.q.Exec(ctx, `INSERT INTO servers(id, project_id, user_id, name, status, vm_state, task_state, power_state,
		locked, image_id, flavor_id, key_name, system_volume_id, reinstall_failed, task_job_id, fault, metadata, az, vpc_id, addr,
		access_port, launch_index, created, updated, launched_at, host, details, reservation_id, nics, tags, task_owner)
		VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30,'')`,
		args...)
	if isUnique(err) {
		return fmt.Errorf("server %q: %w", s.ID, ecs.ErrConflict)
	}
	if err != nil {
		return err
	}
	for _, n := range s.NICs {
		_, err := t.q.Exec(ctx, `INSERT INTO ports(port_id, server_id, project_id, subnet_id, ip) VALUES($1,$2,$3,$4,$5)`,
			n.PortID, s.ID, s.ProjectID, n.SubnetID, n.IP)
		if isUnique(err) {
			return &store.AddressTakenError{SubnetID: n.SubnetID, IP: n.IP}
		}
		if err != nil {
			return err
		}
	}
	return t.insertTags(ctx, s.ProjectID, s.ID, s.Tags)
}

func (t *tx) insertTags(ctx context.Context, projectID, serverID string, tags []ecs.Tag) error {
	for _, tg := range tags {
		if _, err := t.q.Exec(ctx, `INSERT INTO server_tags(server_id, project_id, key, value) VALUES($1,$2,$3,$4)`,
			serverID, projectID, tg.Key, tg.Value); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) ServerTagsSet(ctx context.Context, projectID, serverID string, tags []ecs.Tag) error {
	if unstorable(projectID, serverID) {
		return notFound("server", serverID)
	}
	_, enc := store.EncodeServerJSON(&ecs.Server{Tags: tags})
	tag, err := t.q.Exec(ctx, `UPDATE servers SET tags = $1 WHERE id = $2 AND project_id = $3`, enc, serverID, projectID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound("server", serverID)
	}
	if _, err := t.q.Exec(ctx, `DELETE FROM server_tags WHERE server_id = $1`, serverID); err != nil {
		return err
	}
	return t.insertTags(ctx, projectID, serverID, tags)
}

// SubnetEnsure locks the subnet's row (FOR UPDATE) until the transaction
// ends: allocations in one subnet run one after another on any node.
func (t *tx) SubnetEnsure(ctx context.Context, sn ecs.Subnet) (ecs.Subnet, error) {
	if _, err := t.q.Exec(ctx, `INSERT INTO subnets(project_id, id, vpc_id, cidr, created) VALUES($1,$2,$3,$4,$5)
		ON CONFLICT DO NOTHING`, sn.ProjectID, sn.ID, sn.VPCID, sn.CIDR, ms(sn.Created)); err != nil {
		return sn, err
	}
	var created int64
	err := t.q.QueryRow(ctx, `SELECT vpc_id, cidr, created FROM subnets WHERE project_id = $1 AND id = $2`+forUpdate,
		sn.ProjectID, sn.ID).Scan(&sn.VPCID, &sn.CIDR, &created)
	sn.Created = fromMS(created)
	return sn, err
}

func (t *tx) SubnetAddresses(ctx context.Context, projectID, subnetID string) ([]string, error) {
	rows, err := t.q.Query(ctx, `SELECT ip FROM ports WHERE project_id = $1 AND subnet_id = $2`, projectID, subnetID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ServerUpdate writes every column but the task owner, which only
// ServerSetOwner changes (and clears when the task ends).
func (t *tx) ServerUpdate(ctx context.Context, s *ecs.Server) error {
	args := append(serverArgs(s)[1:], s.ID, s.ProjectID)
	tag, err := t.q.Exec(ctx, `UPDATE servers SET user_id=$1, name=$2, status=$3, vm_state=$4, task_state=$5, power_state=$6,
		locked=$7, image_id=$8, flavor_id=$9, key_name=$10, system_volume_id=$11, reinstall_failed=$12, task_job_id=$13, fault=$14,
		metadata=$15, az=$16, vpc_id=$17, addr=$18, access_port=$19, launch_index=$20, created=$21, updated=$22, launched_at=$23,
		host=$24, details=$25, task_owner = CASE WHEN $13 = '' THEN '' ELSE task_owner END
		WHERE id=$26 AND project_id=$27`, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound("server", s.ID)
	}
	return nil
}

func (t *tx) ServerDelete(ctx context.Context, id string) error {
	if unstorable(id) {
		return nil
	}
	for _, q := range []string{`DELETE FROM servers WHERE id = $1`, `DELETE FROM ports WHERE server_id = $1`,
		`DELETE FROM server_tags WHERE server_id = $1`, `DELETE FROM address_conflicts WHERE server_id = $1`} {
		if _, err := t.q.Exec(ctx, q, id); err != nil {
			return err
		}
	}
	return t.AllocationFree(ctx, id)
}

func (t *tx) ServerFence(ctx context.Context, serverID, token string) error {
	if unstorable(serverID, token) {
		return fmt.Errorf("server %s: %w", serverID, ecs.ErrFenced)
	}
	var owner string
	err := t.q.QueryRow(ctx, `SELECT task_owner FROM servers WHERE id = $1`+forUpdate, serverID).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
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
	tag, err := t.q.Exec(ctx, `UPDATE servers SET task_owner = $1 WHERE id = $2 AND task_job_id = $3`, token, serverID, jobID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("server %s is not under job %s: %w", serverID, jobID, ecs.ErrFenced)
	}
	return nil
}

// ---- volumes

const volumeCols = `id, project_id, server_id, image_id, size_gb, volume_type, status, device, created, host, name`

func scanVolume(sc pgx.Row) (ecs.Volume, error) {
	var v ecs.Volume
	var created int64
	err := sc.Scan(&v.ID, &v.ProjectID, &v.ServerID, &v.ImageID, &v.SizeGB, &v.VolumeType, &v.Status, &v.Device, &created, &v.Host,
		&v.Name)
	v.Created = fromMS(created)
	return v, err
}

func getVolume(ctx context.Context, q querier, id, lock string) (ecs.Volume, error) {
	if unstorable(id) {
		return ecs.Volume{}, notFound("volume", id)
	}
	v, err := scanVolume(q.QueryRow(ctx, `SELECT `+volumeCols+` FROM volumes WHERE id = $1`+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, notFound("volume", id)
	}
	return v, err
}

func (s *Store) VolumeGet(ctx context.Context, id string) (ecs.Volume, error) {
	return getVolume(ctx, s.db, id, "")
}

func (t *tx) VolumeGet(ctx context.Context, id string) (ecs.Volume, error) {
	return getVolume(ctx, t.q, id, forUpdate)
}

func (s *Store) VolumeListAll(ctx context.Context) ([]ecs.Volume, error) {
	return listVolumes(ctx, s.db, `SELECT `+volumeCols+` FROM volumes ORDER BY created, id`)
}

func (s *Store) VolumeList(ctx context.Context, projectID string) ([]ecs.Volume, error) {
	return listVolumes(ctx, s.db, `SELECT `+volumeCols+` FROM volumes WHERE project_id = $1 ORDER BY created, id`, projectID)
}

func (t *tx) VolumeList(ctx context.Context, projectID string) ([]ecs.Volume, error) {
	return listVolumes(ctx, t.q, `SELECT `+volumeCols+` FROM volumes WHERE project_id = $1 ORDER BY created, id`, projectID)
}

func listVolumes(ctx context.Context, q querier, query string, args ...any) ([]ecs.Volume, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ecs.Volume, error) { return scanVolume(r) })
}

func (t *tx) VolumeUpsert(ctx context.Context, v *ecs.Volume) error {
	_, err := t.q.Exec(ctx, `INSERT INTO volumes(`+volumeCols+`) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)
		ON CONFLICT (id) DO UPDATE SET project_id=EXCLUDED.project_id, server_id=EXCLUDED.server_id, image_id=EXCLUDED.image_id,
		size_gb=EXCLUDED.size_gb, volume_type=EXCLUDED.volume_type, status=EXCLUDED.status, device=EXCLUDED.device,
		created=EXCLUDED.created, host=EXCLUDED.host, name=EXCLUDED.name`,
		v.ID, v.ProjectID, v.ServerID, v.ImageID, v.SizeGB, v.VolumeType, v.Status, v.Device, ms(v.Created), v.Host, v.Name)
	return err
}

func (t *tx) VolumeDelete(ctx context.Context, id string) error {
	if unstorable(id) {
		return nil
	}
	if _, err := t.q.Exec(ctx, `DELETE FROM volumes WHERE id = $1`, id); err != nil {
		return err
	}
	return t.AllocationFree(ctx, id)
}

// ---- key pairs

const keypairCols = `id, project_id, user_id, name, public_key, fingerprint, type, created`

func scanKeypair(sc pgx.Row) (ecs.Keypair, error) {
	var k ecs.Keypair
	var created int64
	err := sc.Scan(&k.ID, &k.ProjectID, &k.UserID, &k.Name, &k.PublicKey, &k.Fingerprint, &k.Type, &created)
	k.Created = fromMS(created)
	return k, err
}

func getKeypair(ctx context.Context, q querier, projectID, userID, name, lock string) (ecs.Keypair, error) {
	if unstorable(projectID, userID, name) {
		return ecs.Keypair{}, notFound("keypair", name)
	}
	k, err := scanKeypair(q.QueryRow(ctx, `SELECT `+keypairCols+` FROM keypairs WHERE project_id = $1 AND user_id = $2 AND name = $3`+lock,
		projectID, userID, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, notFound("keypair", name)
	}
	return k, err
}

func (s *Store) KeypairGet(ctx context.Context, projectID, userID, name string) (ecs.Keypair, error) {
	return getKeypair(ctx, s.db, projectID, userID, name, "")
}

func (t *tx) KeypairGet(ctx context.Context, projectID, userID, name string) (ecs.Keypair, error) {
	return getKeypair(ctx, t.q, projectID, userID, name, forShare)
}

func (s *Store) KeypairList(ctx context.Context, projectID, userID string) ([]ecs.Keypair, error) {
	if unstorable(projectID, userID) {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+keypairCols+` FROM keypairs WHERE project_id = $1 AND user_id = $2 ORDER BY name`,
		projectID, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ecs.Keypair, error) { return scanKeypair(r) })
}

func (t *tx) KeypairInsert(ctx context.Context, k *ecs.Keypair) error {
	err := t.q.QueryRow(ctx, `INSERT INTO keypairs(project_id, user_id, name, public_key, fingerprint, type, created)
		VALUES($1,$2,$3,$4,$5,$6,$7) RETURNING id`, k.ProjectID, k.UserID, k.Name, k.PublicKey, k.Fingerprint, k.Type, ms(k.Created)).
		Scan(&k.ID)
	if isUnique(err) {
		return fmt.Errorf("keypair %q: %w", k.Name, ecs.ErrConflict)
	}
	return err
}

func (t *tx) KeypairDelete(ctx context.Context, projectID, userID, name string) error {
	if unstorable(projectID, userID, name) {
		return notFound("keypair", name)
	}
	tag, err := t.q.Exec(ctx, `DELETE FROM keypairs WHERE project_id = $1 AND user_id = $2 AND name = $3`, projectID, userID, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound("keypair", name)
	}
	return nil
}

// cleanText makes s storable in a TEXT column: PostgreSQL refuses NUL
// bytes and invalid UTF-8, which SQLite keeps. Used for operator-only text
// (error causes) that may carry arbitrary bytes.
func cleanText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

// unstorable reports whether a key cannot be in a TEXT column (a NUL byte,
// invalid UTF-8), so that a lookup by it finds nothing without asking.
func unstorable(keys ...string) bool {
	for _, k := range keys {
		if strings.IndexByte(k, 0) >= 0 || !utf8.ValidString(k) {
			return true
		}
	}
	return false
}

// Analyze refreshes the query planner's statistics (after a bulk load;
// autovacuum does it too, later).
func (s *Store) Analyze(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `ANALYZE`)
	return err
}
