// Package datadir is the layout of an ecsd data directory: where the
// database, the secret key, the credentials file and the driver state live,
// which compute driver the directory belongs to, and the lock that keeps
// one daemon per directory.
//
// It promises:
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
	"github.com/ecsproject/ecsd/internal/secret"
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
// (it holds the database). A missing one is an error that says so, for
// commands that must not make a new, empty store by mistake.
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

// OpenBox returns the secret box of the data dir, making its key on first
// use.
func (d Dir) OpenBox() (*secret.Box, error) {
	return secret.LoadOrCreate(d.SecretPath())
}

// LoadBox returns the secret box of an existing data dir; a missing key is
// an error (a new key could not open the secrets already stored).
func (d Dir) LoadBox() (*secret.Box, error) {
	key, err := os.ReadFile(d.SecretPath())
	if err != nil {
		return nil, fmt.Errorf("data dir: secret key: %w", err)
	}
	return secret.New(key)
}
