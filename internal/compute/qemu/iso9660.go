package qemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A minimal ISO 9660 image writer and reader, enough for a NoCloud seed: one
// root directory of small files, a volume label, no extensions. File names
// are stored upper-case with ";1" (Linux shows them lower-case, without the
// version: "META-DATA;1" is meta-data).

const isoSector = 2048

// isoFile is a file of the root directory; Name is as the guest sees it
// (lower-case letters, digits, '-', '_' and '.').
type isoFile struct {
	Name string
	Data []byte
}

// writeISO returns an ISO 9660 image labelled label holding files.
func writeISO(label string, files []isoFile, now time.Time) ([]byte, error) {
	if len(label) == 0 || len(label) > 32 {
		return nil, fmt.Errorf("iso9660: label %q is not 1-32 characters", label)
	}
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b isoFile) int { return strings.Compare(isoName(a.Name), isoName(b.Name)) })
	for i, f := range files {
		if !isoNameOK(f.Name) {
			return nil, fmt.Errorf("iso9660: file name %q", f.Name)
		}
		if i > 0 && isoName(f.Name) == isoName(files[i-1].Name) {
			return nil, fmt.Errorf("iso9660: file %q twice", f.Name)
		}
	}
	const (
		pvdAt, termAt, lpathAt, mpathAt, rootAt = 16, 17, 18, 19, 20
	)
	// Sectors of the files, after the root directory.
	next := uint32(rootAt + 1)
	extents := make([]uint32, len(files))
	for i, f := range files {
		extents[i] = next
		next += uint32((len(f.Data) + isoSector - 1) / isoSector)
	}
	total := next
	img := make([]byte, int(total)*isoSector)

	// Root directory: ".", "..", then the files.
	root := img[rootAt*isoSector : (rootAt+1)*isoSector]
	off := 0
	off += putDirRecord(root[off:], []byte{0}, rootAt, isoSector, true, now)
	off += putDirRecord(root[off:], []byte{1}, rootAt, isoSector, true, now)
	for i, f := range files {
		id := []byte(isoName(f.Name))
		if off+33+len(id)+1 > isoSector {
			return nil, errors.New("iso9660: too many files for one directory sector")
		}
		off += putDirRecord(root[off:], id, extents[i], uint32(len(f.Data)), false, now)
		copy(img[int(extents[i])*isoSector:], f.Data)
	}

	// Path tables: the root only.
	lp := img[lpathAt*isoSector:]
	lp[0] = 1
	binary.LittleEndian.PutUint32(lp[2:], rootAt)
	binary.LittleEndian.PutUint16(lp[6:], 1)
	mp := img[mpathAt*isoSector:]
	mp[0] = 1
	binary.BigEndian.PutUint32(mp[2:], rootAt)
	binary.BigEndian.PutUint16(mp[6:], 1)
	const pathTableSize = 10

	pvd := img[pvdAt*isoSector : (pvdAt+1)*isoSector]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	padCopy(pvd[8:40], "LINUX")
	padCopy(pvd[40:72], label)
	both32(pvd[80:], total)
	both16(pvd[120:], 1)
	both16(pvd[124:], 1)
	both16(pvd[128:], isoSector)
	both32(pvd[132:], pathTableSize)
	binary.LittleEndian.PutUint32(pvd[140:], lpathAt)
	binary.BigEndian.PutUint32(pvd[148:], mpathAt)
	putDirRecord(pvd[156:190], []byte{0}, rootAt, isoSector, true, now)
	for _, r := range [][2]int{{190, 318}, {318, 446}, {446, 574}, {574, 702}, {702, 739}, {739, 776}, {776, 813}} {
		padCopy(pvd[r[0]:r[1]], "")
	}
	stamp := []byte(now.UTC().Format("20060102150405") + "00\x00")
	copy(pvd[813:], stamp)
	copy(pvd[830:], stamp)
	copy(pvd[847:], "0000000000000000\x00")
	copy(pvd[864:], "0000000000000000\x00")
	pvd[881] = 1

	term := img[termAt*isoSector:]
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1
	return img, nil
}

// readISO returns the label and the files of the root directory of an
// image made by writeISO, names as the guest sees them.
func readISO(img []byte) (string, map[string][]byte, error) {
	if len(img) < 17*isoSector {
		return "", nil, errors.New("iso9660: image too small")
	}
	pvd := img[16*isoSector : 17*isoSector]
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return "", nil, errors.New("iso9660: no primary volume descriptor")
	}
	label := strings.TrimRight(string(pvd[40:72]), " ")
	rootAt := binary.LittleEndian.Uint32(pvd[156+2:])
	rootLen := binary.LittleEndian.Uint32(pvd[156+10:])
	dir, err := isoExtent(img, rootAt, rootLen)
	if err != nil {
		return "", nil, err
	}
	files := map[string][]byte{}
	for off := 0; off < len(dir); {
		n := int(dir[off])
		if n == 0 { // records do not cross sectors: skip to the next one
			off = (off/isoSector + 1) * isoSector
			continue
		}
		if off+n > len(dir) || n < 34 {
			return "", nil, errors.New("iso9660: bad directory record")
		}
		r := dir[off : off+n]
		off += n
		idLen := int(r[32])
		if 33+idLen > n {
			return "", nil, errors.New("iso9660: bad directory record")
		}
		id := string(r[33 : 33+idLen])
		if r[25]&2 != 0 || id == "\x00" || id == "\x01" {
			continue
		}
		data, err := isoExtent(img, binary.LittleEndian.Uint32(r[2:]), binary.LittleEndian.Uint32(r[10:]))
		if err != nil {
			return "", nil, err
		}
		files[strings.ToLower(strings.TrimSuffix(id, ";1"))] = data
	}
	return label, files, nil
}

func isoExtent(img []byte, at, size uint32) ([]byte, error) {
	start := int64(at) * isoSector
	if size == 0 {
		return []byte{}, nil
	}
	if start+int64(size) > int64(len(img)) {
		return nil, errors.New("iso9660: extent beyond the image")
	}
	return img[start : start+int64(size)], nil
}

func isoName(name string) string { return strings.ToUpper(name) + ";1" }

func isoNameOK(name string) bool {
	if name == "" || len(name) > 30 {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// putDirRecord writes a directory record into b and returns its length.
func putDirRecord(b []byte, id []byte, extent, size uint32, dir bool, now time.Time) int {
	n := 33 + len(id)
	if len(id)%2 == 0 {
		n++
	}
	b[0] = byte(n)
	both32(b[2:], extent)
	both32(b[10:], size)
	t := now.UTC()
	b[18] = byte(t.Year() - 1900)
	b[19] = byte(t.Month())
	b[20] = byte(t.Day())
	b[21] = byte(t.Hour())
	b[22] = byte(t.Minute())
	b[23] = byte(t.Second())
	if dir {
		b[25] = 2
	}
	both16(b[28:], 1)
	b[32] = byte(len(id))
	copy(b[33:], id)
	return n
}

func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func padCopy(dst []byte, s string) {
	copy(dst, bytes.Repeat([]byte{' '}, len(dst)))
	copy(dst, s)
}
