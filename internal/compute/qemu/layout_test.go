package qemu

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"testing"
)

// memDisk builds disk images in memory for detectLayout.
type memDisk []byte

func newMemDisk(size int) memDisk { return make(memDisk, size) }

// ext puts an ext superblock with the given feature flags at off.
func (m memDisk) ext(off int, compat, incompat uint32) memDisk {
	sb := m[off+1024:]
	binary.LittleEndian.PutUint16(sb[56:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[92:], compat)
	binary.LittleEndian.PutUint32(sb[96:], incompat)
	return m
}

func (m memDisk) at(off int, b string) memDisk { copy(m[off:], b); return m }

func (m memDisk) mbr(entries ...[3]uint32) memDisk { // type, start LBA, sectors
	for i, e := range entries {
		p := m[446+16*i:]
		p[4] = byte(e[0])
		binary.LittleEndian.PutUint32(p[8:], e[1])
		binary.LittleEndian.PutUint32(p[12:], e[2])
	}
	m[510], m[511] = 0x55, 0xAA
	return m
}

func (m memDisk) gpt(parts ...[2]uint64) memDisk {
	m.mbr([3]uint32{0xEE, 1, uint32(len(m)/512 - 1)})
	h := m[512:]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint64(h[72:], 2)
	binary.LittleEndian.PutUint32(h[80:], 128)
	binary.LittleEndian.PutUint32(h[84:], 128)
	for i, p := range parts {
		e := m[1024+128*i:]
		e[0] = 0xaf
		binary.LittleEndian.PutUint64(e[32:], p[0])
		binary.LittleEndian.PutUint64(e[40:], p[1])
	}
	binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(m[1024:1024+128*128]))
	return m
}

func TestDetectLayout(t *testing.T) {
	t.Parallel()
	const mb = 1 << 20
	tests := []struct {
		name string
		disk memDisk
		want layout
	}{
		{"whole-disk ext4", newMemDisk(4*mb).ext(0, 0x4, 0x40),
			layout{tableNone, []volume{{0, 4 * mb, "ext4"}}}},
		{"whole-disk ext3", newMemDisk(4*mb).ext(0, 0x4, 0),
			layout{tableNone, []volume{{0, 4 * mb, "ext3"}}}},
		{"whole-disk ext2", newMemDisk(4*mb).ext(0, 0, 0),
			layout{tableNone, []volume{{0, 4 * mb, "ext2"}}}},
		{"whole-disk xfs", newMemDisk(4*mb).at(0, "XFSB"),
			layout{tableNone, []volume{{0, 4 * mb, "xfs"}}}},
		{"empty", newMemDisk(4 * mb), layout{Table: tableNone}},
		{"MBR: swap, extended, ext4", newMemDisk(8*mb).mbr([3]uint32{0x82, 2048, 2048}, [3]uint32{0x05, 4096, 100},
			[3]uint32{0x83, 8192, 4096}).at(2048*512+4086, "SWAPSPACE2").ext(8192*512, 0x4, 0x240),
			layout{tableMBR, []volume{{2048 * 512, mb, "swap"}, {8192 * 512, 2 * mb, "ext4"}}}},
		{"GPT: vfat ESP, ext4 root", func() memDisk {
			m := newMemDisk(8*mb).gpt([2]uint64{2048, 4095}, [2]uint64{4096, 16383})
			m.at(2048*512+82, "FAT32")
			return m.ext(4096*512, 0, 0x40)
		}(), layout{tableGPT, []volume{{2048 * 512, mb, "vfat"}, {4096 * 512, 6 * mb, "ext4"}}}},
		{"GPT: btrfs", newMemDisk(8*mb).gpt([2]uint64{2048, 16383}).at(2048*512+65536+64, "_BHRfS_M"),
			layout{tableGPT, []volume{{2048 * 512, 7 * mb, "btrfs"}}}},
		{"GPT: lvm", newMemDisk(8*mb).gpt([2]uint64{2048, 16383}).at(2048*512+512, "LABELONE"),
			layout{tableGPT, []volume{{2048 * 512, 7 * mb, "lvm"}}}},
	}
	for _, tc := range tests {
		got, err := detectLayout(bytes.NewReader(tc.disk), int64(len(tc.disk)))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: detectLayout = %+v, %v\nwant %+v", tc.name, got, err, tc.want)
		}
	}
	// A protective MBR without a GPT header is an error, not a guess.
	bad := newMemDisk(mb).mbr([3]uint32{0xEE, 1, 2047})
	if _, err := detectLayout(bytes.NewReader(bad), mb); err == nil {
		t.Error("protective MBR without GPT accepted")
	}
}

func FuzzDetectLayout(f *testing.F) {
	f.Add([]byte(newMemDisk(70000).ext(0, 0, 0x40)))
	f.Add([]byte(newMemDisk(40000).gpt([2]uint64{40, 60})))
	f.Add([]byte(newMemDisk(4096).mbr([3]uint32{0x83, 1, 7})))
	f.Fuzz(func(t *testing.T, b []byte) {
		lay, err := detectLayout(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, v := range lay.Volumes {
			if v.Offset < 0 || v.Size < 0 {
				t.Fatalf("negative volume %+v", v)
			}
		}
	})
}
