package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// extFS is an ext2/3/4 filesystem in a raw file (an image, or the FUSE view
// of an overlay), at a byte offset, read and edited with e2fsprogs. Each
// method runs debugfs once: a run costs ~20 ms here, far more than the work.
type extFS struct {
	d       *Driver
	dev     string // the file, with "?offset=N" when the filesystem does not start at 0
	scratch string // a private directory for the files debugfs reads and writes
}

func (d *Driver) openExtFS(file string, offset int64, scratch string) *extFS {
	dev := file
	if offset != 0 {
		dev = file + "?offset=" + strconv.FormatInt(offset, 10)
	}
	return &extFS{d: d, dev: dev, scratch: scratch}
}

// fsPathOK reports whether p can be given to debugfs, whose command parser
// splits on blanks and interprets quotes.
func fsPathOK(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Errorf("guest path %q is not clean and absolute", p)
	}
	if strings.ContainsAny(p, " \t\n\r\"'\\\x00") {
		return fmt.Errorf("guest path %q has blanks, quotes or backslashes", p)
	}
	return nil
}

// look is the result of extFS.look.
type look struct {
	State    string               // "clean", "not clean", "clean with errors", ...
	Features []string             // filesystem features (has_journal, needs_recovery, ...)
	Stat     map[string]inodeStat // by path; missing paths are absent
	Data     map[string][]byte    // content by path; missing paths are absent
}

func (l *look) has(feature string) bool {
	for _, f := range l.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// look reads, in one debugfs run, the superblock's state and features, the
// inodes of stats and the contents of reads. A path that does not exist is
// left out of the maps. Symbolic links are not followed.
func (f *extFS) look(ctx context.Context, stats, reads []string) (*look, error) {
	cmds := []string{"stats -h"}
	for _, p := range stats {
		if err := fsPathOK(p); err != nil {
			return nil, err
		}
		cmds = append(cmds, "stat "+p)
	}
	dumps := map[string]string{}
	for i, p := range reads {
		if err := fsPathOK(p); err != nil {
			return nil, err
		}
		host := filepath.Join(f.scratch, "read"+strconv.Itoa(i))
		os.Remove(host)
		dumps[p] = host
		cmds = append(cmds, "dump "+p+" "+host)
	}
	stdout, stderr, err := f.debugfs(ctx, false, cmds)
	if err != nil {
		return nil, err
	}
	sections, err := splitSections(stdout, cmds)
	if err != nil {
		return nil, fmt.Errorf("debugfs: %w (stderr: %s)", err, stderr)
	}
	l := &look{Stat: map[string]inodeStat{}, Data: map[string][]byte{}}
	for line := range strings.SplitSeq(sections[0], "\n") {
		key, val, _ := strings.Cut(line, ":")
		switch key {
		case "Filesystem state":
			l.State = strings.TrimSpace(val)
		case "Filesystem features":
			l.Features = strings.Fields(val)
		}
	}
	if l.State == "" {
		return nil, fmt.Errorf("debugfs: cannot read the filesystem: %s", stderr)
	}
	for i, p := range stats {
		out := sections[1+i]
		if strings.TrimSpace(out) == "" {
			continue // not found (debugfs said so on stderr)
		}
		st, err := parseDebugfsStat(out)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		l.Stat[p] = st
	}
	for p, host := range dumps {
		b, err := os.ReadFile(host)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		os.Remove(host)
		l.Data[p] = b
	}
	return l, nil
}

// splitSections splits the stdout of "debugfs -f" into the output of each
// command; debugfs echoes every command as "debugfs: <cmd>".
func splitSections(out string, cmds []string) ([]string, error) {
	bufs := make([]strings.Builder, len(cmds))
	i := -1
	for line := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		if i+1 < len(cmds) && line == "debugfs: "+cmds[i+1] {
			i++
			continue
		}
		if i >= 0 {
			bufs[i].WriteString(line)
			bufs[i].WriteByte('\n')
		}
	}
	if i != len(cmds)-1 {
		return nil, fmt.Errorf("output of %d commands, want %d", i+1, len(cmds))
	}
	sections := make([]string, len(cmds))
	for i := range bufs {
		sections[i] = bufs[i].String()
	}
	return sections, nil
}

// exec runs cmds with debugfs -w; any error message debugfs prints fails
// the call (debugfs itself exits 0 after a failed command).
func (f *extFS) exec(ctx context.Context, cmds []string) error {
	_, stderr, err := f.debugfs(ctx, true, cmds)
	if err != nil {
		return err
	}
	if stderr != "" {
		return fmt.Errorf("debugfs: %s", stderr)
	}
	return nil
}

// debugfs runs the commands and returns stdout and stderr, less the version
// banner.
func (f *extFS) debugfs(ctx context.Context, write bool, cmds []string) (string, string, error) {
	cmdFile := filepath.Join(f.scratch, "debugfs.cmds")
	if err := os.WriteFile(cmdFile, []byte(strings.Join(cmds, "\n")+"\n"), 0o600); err != nil {
		return "", "", err
	}
	args := []string{"-f", cmdFile}
	if write {
		args = append([]string{"-w"}, args...)
	}
	args = append(args, f.dev)
	cmd := exec.CommandContext(ctx, f.d.bins.debugfs, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", "", ctxErr
		}
		return "", "", fmt.Errorf("debugfs: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var errLines []string
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			errLines = append(errLines, line)
		}
	}
	return stdout.String(), strings.Join(errLines, "; "), nil
}

// replayJournal replays the journal of a filesystem that was not cleanly
// unmounted (the kernel would do the same when mounting it).
func (f *extFS) replayJournal(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, f.d.bins.e2fsck, "-E", "journal_only", "-p", f.dev)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 { // errors corrected
			return nil
		}
		return fmt.Errorf("e2fsck journal replay: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// check runs a read-only e2fsck -fn: nil when the filesystem is consistent.
func (f *extFS) check(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, f.d.bins.e2fsck, "-fn", f.dev)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("e2fsck -fn: %w: %s", err, lastLines(string(out), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}
