package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/compute"
)

const (
	shadowPath = "/etc/shadow"
	passwdPath = "/etc/passwd"
	rootHome   = "/root"
)

// ApplyCredentials writes c into the root filesystem of disk diskID (which
// no running server may use), then reads it back, verifies it and checks
// the filesystem with e2fsck -fn. Empty fields are left as they are.
func (d *Driver) ApplyCredentials(ctx context.Context, diskID string, c compute.Credentials) error {
	const op = "apply credentials"
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs(op, "disk", diskID); err != nil {
		return err
	}
	if err := compute.CheckCredentials(c); err != nil {
		return opError(op, err)
	}
	unlock := d.locks.lock("disk:" + diskID)
	defer unlock()
	file := d.diskPath(diskID)
	if err := compute.CheckDiskWrite(d.diskView(diskID), true); err != nil {
		return opError(op, err)
	}
	if c == (compute.Credentials{}) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	exp, err := d.exportDisk(ctx, file, exportOpts{format: "qcow2", writable: true})
	if err != nil {
		return fmt.Errorf("qemu: %s: disk %s: %w", op, diskID, err)
	}
	fs, err := d.rootFS(ctx, exp)
	if err == nil {
		err = d.inject(ctx, fs, exp.dir, c, time.Now())
	}
	if cerr := exp.close(context.WithoutCancel(ctx)); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("qemu: %s: disk %s: %w", op, diskID, err)
	}
	return nil
}

// ReadCredentials reads root's password hash and authorized_keys from disk
// diskID. A locked or placeholder hash ("*", "!", "!!") reads as "".
func (d *Driver) ReadCredentials(ctx context.Context, diskID string) (compute.Credentials, error) {
	const op = "read credentials"
	if err := ctx.Err(); err != nil {
		return compute.Credentials{}, err
	}
	if err := checkIDs(op, "disk", diskID); err != nil {
		return compute.Credentials{}, err
	}
	unlock := d.locks.lock("disk:" + diskID)
	defer unlock()
	file := d.diskPath(diskID)
	if _, err := os.Stat(file); err != nil {
		return compute.Credentials{}, notFound(op, "disk", diskID)
	}
	exp, err := d.exportDisk(ctx, file, exportOpts{format: "qcow2", share: true})
	if err != nil {
		return compute.Credentials{}, fmt.Errorf("qemu: %s: disk %s: %w", op, diskID, err)
	}
	defer exp.close(context.WithoutCancel(ctx))
	fs, err := d.rootFS(ctx, exp)
	if err != nil {
		return compute.Credentials{}, fmt.Errorf("qemu: %s: disk %s: %w", op, diskID, err)
	}
	c, err := readCreds(ctx, fs)
	if err != nil {
		return compute.Credentials{}, fmt.Errorf("qemu: %s: disk %s: %w", op, diskID, err)
	}
	return c, nil
}

// rootFS finds the guest's root filesystem in an exported disk.
func (d *Driver) rootFS(ctx context.Context, exp *export) (*extFS, error) {
	size, err := exp.size()
	if err != nil {
		return nil, err
	}
	r, err := d.findRoot(ctx, exp.view, size, exp.dir)
	if err != nil {
		return nil, err
	}
	if r.unsupported != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, r.unsupported)
	}
	return r.fs, nil
}

func readCreds(ctx context.Context, fs *extFS) (compute.Credentials, error) {
	keysPath := rootHome + "/.ssh/authorized_keys"
	l, err := fs.look(ctx, nil, []string{shadowPath, passwdPath, keysPath})
	if err != nil {
		return compute.Credentials{}, err
	}
	var c compute.Credentials
	if shadow, ok := l.Data[shadowPath]; ok {
		h, err := rootField(shadow, 1)
		if err != nil {
			return c, fmt.Errorf("%s: %w", shadowPath, err)
		}
		if strings.Trim(h, "*!") != "" {
			c.PasswordHash = h
		}
	}
	home := homeOf(l.Data[passwdPath])
	if home != rootHome {
		keysPath = home + "/.ssh/authorized_keys"
		if l, err = fs.look(ctx, nil, []string{keysPath}); err != nil {
			return c, err
		}
	}
	c.AuthorizedKeys = string(l.Data[keysPath])
	return c, nil
}

// homeOf returns root's home directory from /etc/passwd, /root when passwd
// says nothing usable.
func homeOf(passwd []byte) string {
	home, err := rootField(passwd, 5)
	if err != nil || fsPathOK(home) != nil || home == "/" {
		return rootHome
	}
	return home
}

// inject writes c into the guest root filesystem fs and verifies it;
// scratch is a private directory for the files it writes.
func (d *Driver) inject(ctx context.Context, fs *extFS, scratch string, c compute.Credentials, now time.Time) error {
	home := rootHome
	stats := []string{shadowPath}
	reads := []string{shadowPath, passwdPath}
	sshPaths := func(home string) (dir, keys string) { return home + "/.ssh", home + "/.ssh/authorized_keys" }
	sshDir, keysPath := sshPaths(home)
	stats = append(stats, home, sshDir, keysPath)
	l, err := fs.look(ctx, stats, reads)
	if err != nil {
		return err
	}
	if l.has("needs_recovery") {
		if err := fs.replayJournal(ctx); err != nil {
			return err
		}
		if l, err = fs.look(ctx, stats, reads); err != nil {
			return err
		}
		if l.has("needs_recovery") {
			return errors.New("journal still needs recovery after replay")
		}
	}
	if l.State != "clean" {
		return fmt.Errorf("filesystem state is %q; it needs an e2fsck repair first", l.State)
	}
	if c.AuthorizedKeys != "" {
		if h := homeOf(l.Data[passwdPath]); h != home {
			home = h
			sshDir, keysPath = sshPaths(home)
			l2, err := fs.look(ctx, []string{home, sshDir, keysPath}, nil)
			if err != nil {
				return err
			}
			for p, st := range l2.Stat {
				l.Stat[p] = st
			}
		}
	}

	// The edit, as one debugfs run.
	var cmds []string
	var newShadow []byte
	shadowStat, hasShadow := l.Stat[shadowPath]
	if c.PasswordHash != "" {
		if !hasShadow || !shadowStat.isRegular() {
			return fmt.Errorf("%w: %s is missing or not a regular file", ErrUnsupported, shadowPath)
		}
		days := now.Unix() / 86400
		if newShadow, err = setRootHash(l.Data[shadowPath], c.PasswordHash, days); err != nil {
			return fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		host := filepath.Join(scratch, "shadow.new")
		if err := os.WriteFile(host, newShadow, 0o600); err != nil {
			return err
		}
		cmds = append(cmds,
			"rm "+shadowPath,
			"write "+host+" "+shadowPath,
			fmt.Sprintf("sif %s mode 0%o", shadowPath, shadowStat.Mode),
			fmt.Sprintf("sif %s uid %d", shadowPath, shadowStat.UID),
			fmt.Sprintf("sif %s gid %d", shadowPath, shadowStat.GID),
		)
	}
	if c.AuthorizedKeys != "" {
		dirs := []string{home, sshDir}
		if parent := path.Dir(home); parent != "/" {
			if _, ok := l.Stat[home]; !ok {
				return fmt.Errorf("%w: root's home %s does not exist", ErrUnsupported, home)
			}
		}
		for _, dir := range dirs {
			st, ok := l.Stat[dir]
			switch {
			case !ok:
				cmds = append(cmds, "mkdir "+dir)
			case !st.isDir():
				return fmt.Errorf("%w: %s is not a directory", ErrUnsupported, dir)
			case dir == home:
				continue // an existing home keeps its mode and owner
			}
			cmds = append(cmds, "sif "+dir+" mode 040700", "sif "+dir+" uid 0", "sif "+dir+" gid 0")
		}
		if st, ok := l.Stat[keysPath]; ok {
			if st.isDir() {
				return fmt.Errorf("%w: %s is a directory", ErrUnsupported, keysPath)
			}
			cmds = append(cmds, "rm "+keysPath)
		}
		host := filepath.Join(scratch, "authorized_keys.new")
		if err := os.WriteFile(host, []byte(c.AuthorizedKeys), 0o600); err != nil {
			return err
		}
		cmds = append(cmds,
			"write "+host+" "+keysPath,
			"sif "+keysPath+" mode 0100600", "sif "+keysPath+" uid 0", "sif "+keysPath+" gid 0",
		)
	}
	if err := fs.exec(ctx, cmds); err != nil {
		return err
	}

	// Read back and verify, and meanwhile check the whole filesystem.
	fsckErr := make(chan error, 1)
	go func() { fsckErr <- fs.check(ctx) }()
	v, err := fs.look(ctx, []string{shadowPath, sshDir, keysPath}, []string{shadowPath, keysPath})
	if ferr := <-fsckErr; err == nil && ferr != nil {
		return fmt.Errorf("verify: %w", ferr)
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if c.PasswordHash != "" {
		got, ok := v.Data[shadowPath]
		st := v.Stat[shadowPath]
		switch {
		case !ok || !bytes.Equal(got, newShadow):
			return errors.New("verify: /etc/shadow does not hold what was written")
		case st.Mode != shadowStat.Mode || st.UID != shadowStat.UID || st.GID != shadowStat.GID:
			return fmt.Errorf("verify: /etc/shadow is mode 0%o %d:%d, want 0%o %d:%d",
				st.Mode, st.UID, st.GID, shadowStat.Mode, shadowStat.UID, shadowStat.GID)
		}
		if h, _ := rootField(got, 1); h != c.PasswordHash {
			return errors.New("verify: root's hash in /etc/shadow is not the one written")
		}
		if day, _ := rootField(got, 2); day != strconv.FormatInt(now.Unix()/86400, 10) {
			return errors.New("verify: root's last-change day in /etc/shadow is not today")
		}
	}
	if c.AuthorizedKeys != "" {
		got, ok := v.Data[keysPath]
		kst, dst := v.Stat[keysPath], v.Stat[sshDir]
		switch {
		case !ok || string(got) != c.AuthorizedKeys:
			return fmt.Errorf("verify: %s does not hold the keys written", keysPath)
		case kst.Mode != 0o100600 || kst.UID != 0 || kst.GID != 0:
			return fmt.Errorf("verify: %s is mode 0%o %d:%d, want 0100600 0:0", keysPath, kst.Mode, kst.UID, kst.GID)
		case dst.Mode != 0o040700 || dst.UID != 0 || dst.GID != 0:
			return fmt.Errorf("verify: %s is mode 0%o %d:%d, want 040700 0:0", sshDir, dst.Mode, dst.UID, dst.GID)
		}
	}
	return nil
}
