package qemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// Disk layout detection: partition table and filesystem types, read from
// the raw bytes of an image. The bytes come from an imported image, so they
// are untrusted: every offset and count is bounds-checked.

const sectorSize = 512

// Partition table kinds, as in ecs.Image.PartitionTable.
const (
	tableNone = "none"
	tableMBR  = "mbr"
	tableGPT  = "gpt"
)

// volume is a filesystem candidate: the whole disk or one partition.
type volume struct {
	Offset int64  // byte offset of the volume in the disk
	Size   int64  // bytes; 0 when unknown
	FSType string // ext2, ext3, ext4, xfs, btrfs, vfat, swap, lvm, ntfs, or "" (unknown)
}

// layout is what detectLayout found.
type layout struct {
	Table   string
	Volumes []volume
}

// detectLayout reads the partition table of a disk of size bytes (none,
// MBR or GPT with 512-byte sectors) and the filesystem type of each volume.
// Logical partitions of an extended MBR partition are not listed.
func detectLayout(r io.ReaderAt, size int64) (layout, error) {
	if fs := fsType(r, 0); fs != "" {
		return layout{Table: tableNone, Volumes: []volume{{Offset: 0, Size: size, FSType: fs}}}, nil
	}
	mbr := make([]byte, sectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return layout{Table: tableNone}, nil
		}
		return layout{}, err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return layout{Table: tableNone}, nil
	}
	var parts []volume
	protective := false
	for i := range 4 {
		e := mbr[446+16*i : 446+16*(i+1)]
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:]))
		count := int64(binary.LittleEndian.Uint32(e[12:]))
		switch {
		case typ == 0 || count == 0:
			continue
		case typ == 0xEE:
			protective = true
			continue
		case typ == 0x05 || typ == 0x0F || typ == 0x85:
			continue // extended partition: its logical partitions are not read
		}
		parts = append(parts, volume{Offset: start * sectorSize, Size: count * sectorSize})
	}
	if protective {
		gpt, err := readGPT(r, size)
		if err != nil {
			return layout{}, err
		}
		parts = gpt
	}
	for i := range parts {
		if size > 0 && parts[i].Offset >= size {
			continue
		}
		parts[i].FSType = fsType(r, parts[i].Offset)
	}
	table := tableMBR
	if protective {
		table = tableGPT
	}
	return layout{Table: table, Volumes: parts}, nil
}

// readGPT reads the partition entries of the GPT whose header is at LBA 1.
func readGPT(r io.ReaderAt, size int64) ([]volume, error) {
	h := make([]byte, sectorSize)
	if _, err := r.ReadAt(h, sectorSize); err != nil {
		return nil, errors.New("gpt: cannot read header")
	}
	if !bytes.Equal(h[:8], []byte("EFI PART")) {
		return nil, errors.New("gpt: protective MBR without a GPT header")
	}
	entriesLBA := binary.LittleEndian.Uint64(h[72:])
	n := binary.LittleEndian.Uint32(h[80:])
	esize := binary.LittleEndian.Uint32(h[84:])
	if n > 1024 || esize < 128 || esize > 4096 || esize%8 != 0 || entriesLBA < 2 || entriesLBA > 1<<40 {
		return nil, errors.New("gpt: implausible partition entry array")
	}
	buf := make([]byte, int(n)*int(esize))
	off := int64(entriesLBA) * sectorSize
	if size > 0 && off+int64(len(buf)) > size {
		return nil, errors.New("gpt: partition entries beyond the end of the disk")
	}
	if _, err := r.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, errors.New("gpt: cannot read partition entries")
	}
	var parts []volume
	zero := make([]byte, 16)
	for i := range int(n) {
		e := buf[i*int(esize) : (i+1)*int(esize)]
		if bytes.Equal(e[:16], zero) {
			continue
		}
		first := binary.LittleEndian.Uint64(e[32:])
		last := binary.LittleEndian.Uint64(e[40:])
		if first == 0 || last < first || last > 1<<40 {
			continue
		}
		parts = append(parts, volume{Offset: int64(first) * sectorSize, Size: int64(last-first+1) * sectorSize})
	}
	return parts, nil
}

// fsType recognizes the filesystem whose first byte is at off by its magic
// numbers, or returns "".
func fsType(r io.ReaderAt, off int64) string {
	at := func(o int64, n int) []byte {
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off+o); err != nil {
			return nil
		}
		return b
	}
	if sb := at(1024, 1024); sb != nil && binary.LittleEndian.Uint16(sb[56:]) == 0xEF53 {
		compat := binary.LittleEndian.Uint32(sb[92:])
		incompat := binary.LittleEndian.Uint32(sb[96:])
		const hasJournal, extents, bit64, flexBG = 0x4, 0x40, 0x80, 0x200
		switch {
		case incompat&(extents|bit64|flexBG) != 0:
			return "ext4"
		case compat&hasJournal != 0:
			return "ext3"
		}
		return "ext2"
	}
	if b := at(0, 4); bytes.Equal(b, []byte("XFSB")) {
		return "xfs"
	}
	if b := at(65536+64, 8); bytes.Equal(b, []byte("_BHRfS_M")) {
		return "btrfs"
	}
	if b := at(512, 8); bytes.Equal(b, []byte("LABELONE")) {
		return "lvm"
	}
	if b := at(4096-10, 10); bytes.Equal(b, []byte("SWAPSPACE2")) {
		return "swap"
	}
	if b := at(3, 8); bytes.Equal(b, []byte("NTFS    ")) {
		return "ntfs"
	}
	if b := at(0, 90); b != nil && (bytes.Equal(b[82:87], []byte("FAT32")) || bytes.Equal(b[54:57], []byte("FAT"))) {
		return "vfat"
	}
	return ""
}

func isExt(fs string) bool { return fs == "ext2" || fs == "ext3" || fs == "ext4" }
