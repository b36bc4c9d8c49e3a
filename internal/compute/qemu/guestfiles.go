package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ecsproject/ecsd/internal/compute"
)

// Parsers and editors for the guest files the driver reads and writes. Their
// input comes from an image an operator imported, so it is untrusted: they
// never panic and reject what they do not understand.

// errNoRootEntry means a shadow or passwd file has no line for root.
var errNoRootEntry = errors.New("no entry for root")

// validHash reports whether h can be written as a shadow hash field: the
// rule of compute.CheckCredentials, and not empty.
func validHash(h string) error {
	if h == "" {
		return errors.New("empty password hash")
	}
	return compute.CheckCredentials(compute.Credentials{PasswordHash: h})
}

// setRootHash returns shadow with root's password hash (field 2) set to hash
// and its last-change day (field 3) set to days; every other byte is kept.
func setRootHash(shadow []byte, hash string, days int64) ([]byte, error) {
	if err := validHash(hash); err != nil {
		return nil, err
	}
	lines := bytes.SplitAfter(shadow, []byte("\n"))
	for i, line := range lines {
		body, nl := bytes.CutSuffix(line, []byte("\n"))
		fields := bytes.Split(body, []byte(":"))
		if string(fields[0]) != "root" {
			continue
		}
		if len(fields) < 3 {
			return nil, fmt.Errorf("shadow: root entry has %d fields, want at least 3", len(fields))
		}
		fields[1] = []byte(hash)
		fields[2] = []byte(strconv.FormatInt(days, 10))
		out := bytes.Join(fields, []byte(":"))
		if nl {
			out = append(out, '\n')
		}
		lines[i] = out
		return bytes.Join(lines, nil), nil
	}
	return nil, fmt.Errorf("shadow: %w", errNoRootEntry)
}

// rootField returns field n (0-based) of root's line in a colon-separated
// file (/etc/shadow, /etc/passwd).
func rootField(file []byte, n int) (string, error) {
	for line := range bytes.SplitSeq(file, []byte("\n")) {
		fields := bytes.Split(line, []byte(":"))
		if string(fields[0]) != "root" {
			continue
		}
		if n >= len(fields) {
			return "", fmt.Errorf("root entry has %d fields, want more than %d", len(fields), n)
		}
		return string(fields[n]), nil
	}
	return "", errNoRootEntry
}

// osRelease holds the fields of /etc/os-release the driver uses.
type osRelease struct {
	ID, Name, VersionID, PrettyName string
}

// parseOSRelease parses os-release(5): KEY=value lines, values optionally
// quoted with " or ' and backslash-escaped.
func parseOSRelease(b []byte) osRelease {
	var r osRelease
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		key, val, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		val = unquoteShell(val)
		switch key {
		case "ID":
			r.ID = val
		case "NAME":
			r.Name = val
		case "VERSION_ID":
			r.VersionID = val
		case "PRETTY_NAME":
			r.PrettyName = val
		}
	}
	return r
}

func unquoteShell(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		q := v[0]
		v = v[1 : len(v)-1]
		if q == '"' {
			var b strings.Builder
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			v = b.String()
		}
	}
	return v
}

// platform names the distribution the way the ECS API does (Debian, Ubuntu,
// CentOS, ...): a known os-release ID, else the NAME, else "Other".
func (r osRelease) platform() string {
	known := map[string]string{
		"debian": "Debian", "ubuntu": "Ubuntu", "centos": "CentOS", "rhel": "RedHat",
		"fedora": "Fedora", "opensuse-leap": "OpenSUSE", "sles": "SUSE", "almalinux": "AlmaLinux",
		"rocky": "Rocky", "euleros": "EulerOS", "openEuler": "openEuler", "alpine": "Alpine",
	}
	if p, ok := known[r.ID]; ok {
		return p
	}
	if r.Name != "" {
		return r.Name
	}
	return "Other"
}

func (r osRelease) version() string {
	if r.PrettyName != "" {
		return r.PrettyName
	}
	return strings.TrimSpace(r.Name + " " + r.VersionID)
}

// inodeStat is what the driver needs from debugfs's "stat" output.
type inodeStat struct {
	Mode     uint32 // type and permission bits, as in st_mode
	UID, GID uint32
	Link     string // target of a symbolic link
}

func (s inodeStat) isDir() bool     { return s.Mode&0o170000 == 0o040000 }
func (s inodeStat) isRegular() bool { return s.Mode&0o170000 == 0o100000 }
func (s inodeStat) isSymlink() bool { return s.Mode&0o170000 == 0o120000 }

// parseDebugfsStat parses debugfs "stat" output:
//
//	Inode: 12   Type: regular    Mode:  0640   Flags: 0x80000
//	User:     0   Group:    42   Project:     0   Size: 1024
//	Fast link dest: "../usr/lib/os-release"
//
// debugfs prints permission bits under Mode and the file type under Type.
func parseDebugfsStat(out string) (inodeStat, error) {
	var s inodeStat
	var haveType, haveMode, haveUser bool
	fields := strings.Fields(out)
	for i := 0; i+1 < len(fields); i++ {
		switch fields[i] {
		case "Type:":
			t, ok := map[string]uint32{"regular": 0o100000, "directory": 0o040000, "symlink": 0o120000,
				"FIFO": 0o010000, "socket": 0o140000}[fields[i+1]]
			if !ok && strings.HasPrefix(fields[i+1], "block") {
				t, ok = 0o060000, true
			}
			if !ok && strings.HasPrefix(fields[i+1], "character") {
				t, ok = 0o020000, true
			}
			if !ok {
				return s, fmt.Errorf("debugfs stat: unknown type %q", fields[i+1])
			}
			s.Mode |= t
			haveType = true
		case "Mode:":
			m, err := strconv.ParseUint(fields[i+1], 8, 32)
			if err != nil || m > 0o7777 {
				return s, fmt.Errorf("debugfs stat: bad mode %q", fields[i+1])
			}
			s.Mode |= uint32(m)
			haveMode = true
		case "User:", "Group:":
			v, err := strconv.ParseUint(fields[i+1], 10, 32)
			if err != nil {
				return s, fmt.Errorf("debugfs stat: bad %s %q", fields[i], fields[i+1])
			}
			if fields[i] == "User:" {
				s.UID, haveUser = uint32(v), true
			} else {
				s.GID = uint32(v)
			}
		}
	}
	if !haveType || !haveMode || !haveUser {
		return s, errors.New("debugfs stat: no Type, Mode or User in output")
	}
	if s.isSymlink() {
		// A fast link's target is in the inode; a slow link's is its data
		// (read with cat), and Link stays "".
		if _, rest, ok := strings.Cut(out, "Fast link dest: \""); ok {
			rest, _, _ = strings.Cut(rest, "\n")
			target, ok := strings.CutSuffix(rest, "\"")
			if !ok {
				return s, errors.New("debugfs stat: unterminated symlink target")
			}
			s.Link = target
		}
	}
	return s, nil
}
