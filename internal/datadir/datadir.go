// Package datadir is the layout of an ecsd data directory: where the
// database, the secret key, the credentials file and the driver state live,
// which compute driver the directory belongs to, and the lock that keeps
// one daemon per directory.
//
// It promises:
//   - A node whose store is PostgreSQL (ecsd --store) keeps its driver
//     state, disks and logs in its data dir, and the data dir still
//     belongs to one driver; the database is elsewhere. A data dir keeps
//     the kind of store it was first started with (CheckStore): a single
//     ecsd's SQLite data dir does not join a PostgreSQL cloud, and a
//     PostgreSQL node's data dir is not started alone on a new database.
//   - A data dir belongs to one compute driver, recorded in <dir>/driver on
//     the first start; a start with another driver is refused with an error
//     naming both (servers made by one driver do not exist in the other).
//   - Operator commands (ecsd credentials add, ecsd image import) open an
//     existing data dir only: a mistyped path is an error, never a new,
//     empty store. They do not take the daemon's lock (SQLite in WAL mode
//     lets them write beside a running daemon).
//   - Files holding secrets (secret.key, credentials.json) are 0600 and
//     replaced atomically.
package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ecsproject/ecsd/internal/atomicfile"
)

// Dir is an ecsd data directory.
type Dir struct {
	Path string
}

// The files of a data dir.
const (
	dbFile          = "ecsd.db"
	secretFile      = "secret.key"
	credentialsFile = "credentials.json"
	driverFile      = "driver"
	lockFile        = "ecsd.lock"
)

// DBPath is the SQLite database.
func (d Dir) DBPath() string { return filepath.Join(d.Path, dbFile) }

// SecretPath is the key that seals stored secrets.
func (d Dir) SecretPath() string { return filepath.Join(d.Path, secretFile) }

// CredentialsPath is the credentials file of the first project.
func (d Dir) CredentialsPath() string { return filepath.Join(d.Path, credentialsFile) }

// DriverDir is the state directory of a compute driver (sim/, qemu/).
func (d Dir) DriverDir(driver string) string { return filepath.Join(d.Path, driver) }

// Create makes the data dir (and its parents) unless it exists. created
// says whether this call made it, so that a start that fails can remove
// what it made and leave no half-made data dir behind.
func Create(path string) (d Dir, created bool, err error) {
	d = Dir{Path: path}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(path)), 0o700); err != nil {
		return d, false, err
	}
	err = os.Mkdir(path, 0o700)
	switch {
	case err == nil:
		return d, true, nil
	case errors.Is(err, fs.ErrExist):
		st, serr := os.Stat(path)
		if serr != nil {
			return d, false, serr
		}
		if !st.IsDir() {
			return d, false, fmt.Errorf("data dir %s is not a directory", path)
		}
		return d, false, nil
	default:
		return d, false, err
	}
}

// Open returns the existing data dir at path: one a daemon has started on
// (it holds the SQLite database, or, for a node whose store is
// PostgreSQL, its driver record). A missing one is an error that says so,
// for commands that must not make a new, empty store by mistake.
func Open(path string) (Dir, error) {
	d := Dir{Path: path}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, fmt.Errorf("data dir %s does not exist: check --data-dir, or start ecsd on it once first", path)
	}
	if err != nil {
		return d, fmt.Errorf("data dir: %w", err)
	}
	if !st.IsDir() {
		return d, fmt.Errorf("data dir %s is not a directory", path)
	}
	if _, err := os.Stat(d.DBPath()); err != nil {
		if _, derr := os.Stat(filepath.Join(d.Path, driverFile)); derr == nil {
			return d, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			return d, fmt.Errorf("%s is not an ecsd data dir (no %s): check --data-dir, or start ecsd on it once first", path, dbFile)
		}
		return d, fmt.Errorf("data dir: %w", err)
	}
	return d, nil
}

// Lock takes the exclusive lock that makes one daemon at a time run on the
// data dir (start-up recovery relies on it). unlock releases it.
func (d Dir) Lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(d.Path, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another ecsd", d.Path)
	}
	return func() { f.Close() }, nil
}

// Driver returns the compute driver the data dir belongs to, "" when none
// is recorded yet (a new data dir, or one made before drivers were
// recorded).
func (d Dir) Driver() (string, error) {
	b, err := os.ReadFile(filepath.Join(d.Path, driverFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// DriverMismatchError is a start with a driver other than the data dir's.
type DriverMismatchError struct {
	Path      string
	Recorded  string // the data dir's driver
	Requested string // the driver asked for
}

func (e *DriverMismatchError) Error() string {
	return fmt.Sprintf("data dir %s belongs to driver %s, not %s: servers made by one driver do not exist in the other; "+
		"start with --driver %s, or use another --data-dir for %s (make run uses ./data-qemu, make run-sim ./data)",
		e.Path, e.Recorded, e.Requested, e.Recorded, e.Requested)
}

// CheckDriver returns a *DriverMismatchError when the data dir belongs to
// a driver other than driver. It does not record anything.
func (d Dir) CheckDriver(driver string) error {
	have, err := d.Driver()
	if err != nil {
		return err
	}
	if have != "" && have != driver {
		return &DriverMismatchError{Path: d.Path, Recorded: have, Requested: driver}
	}
	return nil
}

// ClaimDriver checks the data dir's driver and records driver when none is
// recorded. Call it holding the lock.
func (d Dir) ClaimDriver(driver string) error {
	have, err := d.Driver()
	switch {
	case err != nil:
		return err
	case have == driver:
		return nil
	case have != "":
		return &DriverMismatchError{Path: d.Path, Recorded: have, Requested: driver}
	}
	return atomicfile.Write(filepath.Join(d.Path, driverFile), []byte(driver+"\n"), 0o600)
}

// StoreMismatchError is a start with a store other than the data dir's.
type StoreMismatchError struct {
	Path string
	// Shared is true when the data dir is a PostgreSQL node's (it has a
	// driver record and no SQLite database) and the start asked for the
	// SQLite store; false when it holds a SQLite database and the start
	// asked for a shared store.
	Shared bool
}

func (e *StoreMismatchError) Error() string {
	if e.Shared {
		return fmt.Sprintf("data dir %s belongs to a node of a cloud on PostgreSQL (it has no %s): give the cloud's --store, "+
			"or use another --data-dir for a single ecsd on SQLite", e.Path, dbFile)
	}
	return fmt.Sprintf("data dir %s holds the SQLite database (%s) of a single ecsd, whose servers are not in the PostgreSQL store: "+
		"start it without --store, or give this node a data dir of its own", e.Path, dbFile)
}

// CheckStore returns a *StoreMismatchError when the data dir belongs to
// another kind of store than the one asked for (shared: PostgreSQL, else
// the SQLite database in the data dir). A data dir holding a SQLite
// database is a single ecsd's; one that records a driver but holds no
// database is a PostgreSQL node's; a new one is either.
func (d Dir) CheckStore(shared bool) error {
	_, err := os.Stat(d.DBPath())
	hasDB := err == nil
	drv, derr := d.Driver()
	if derr != nil {
		return derr
	}
	switch {
	case shared && hasDB:
		return &StoreMismatchError{Path: d.Path}
	case !shared && !hasDB && drv != "":
		return &StoreMismatchError{Path: d.Path, Shared: true}
	}
	return nil
}
