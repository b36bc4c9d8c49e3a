package qemu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ecsproject/ecsd/internal/atomicfile"
)

// A qcow2 overlay is written here rather than by "qemu-img create": the
// header of an empty overlay is a few hundred bytes, while starting
// qemu-img (and its five fdatasyncs) costs 50-200 ms on a loaded 2-core
// machine. The layout is what qemu-img makes; tests check it with
// "qemu-img check".

const (
	qcow2ClusterBits = 16
	qcow2Cluster     = 1 << qcow2ClusterBits
	qcow2HeaderLen   = 104
	// One L2 table maps cluster/8 clusters.
	qcow2L2Span = qcow2Cluster / 8 * qcow2Cluster
	// Extension carrying the backing file's format.
	qcow2ExtBackingFormat = 0xE2792ACA
)

// qcow2Overlay returns the bytes of an empty qcow2 (version 3) image of
// size bytes whose backing file is backing, of format backingFmt: cluster 0
// holds the header, 1 the refcount table, 2 its refcount block, 3 the L1
// table (all zero: every read goes to the backing file).
func qcow2Overlay(backing, backingFmt string, size int64) ([]byte, error) {
	if size <= 0 {
		return nil, errors.New("qcow2: size must be positive")
	}
	l1Size := (size + qcow2L2Span - 1) / qcow2L2Span
	if l1Size*8 > qcow2Cluster {
		return nil, fmt.Errorf("qcow2: size %d too large for a one-cluster L1 table", size)
	}
	if len(backing) == 0 || len(backing) > 1023 {
		return nil, errors.New("qcow2: backing file name must have 1 to 1023 bytes")
	}
	ext := len(backingFmt) + (8-len(backingFmt)%8)%8
	backingOff := qcow2HeaderLen + 8 + ext + 8
	img := make([]byte, 3*qcow2Cluster) // the L1 cluster (zeros) is a hole
	be := binary.BigEndian
	h := img
	copy(h, "QFI\xfb")
	be.PutUint32(h[4:], 3)
	be.PutUint64(h[8:], uint64(backingOff))
	be.PutUint32(h[16:], uint32(len(backing)))
	be.PutUint32(h[20:], qcow2ClusterBits)
	be.PutUint64(h[24:], uint64(size))
	be.PutUint32(h[36:], uint32(l1Size))
	be.PutUint64(h[40:], 3*qcow2Cluster) // L1 table
	be.PutUint64(h[48:], 1*qcow2Cluster) // refcount table
	be.PutUint32(h[56:], 1)              // refcount table clusters
	be.PutUint32(h[96:], 4)              // refcount order: 16-bit refcounts
	be.PutUint32(h[100:], qcow2HeaderLen)
	e := h[qcow2HeaderLen:]
	be.PutUint32(e, qcow2ExtBackingFormat)
	be.PutUint32(e[4:], uint32(len(backingFmt)))
	copy(e[8:], backingFmt)
	// The end-of-extensions marker is 8 zero bytes, already there.
	copy(h[backingOff:], backing)
	be.PutUint64(img[qcow2Cluster:], 2*qcow2Cluster) // refcount table[0] -> block
	for i := range 4 {
		be.PutUint16(img[2*qcow2Cluster+2*i:], 1) // clusters 0-3 are in use
	}
	return img, nil
}

// writeQcow2Overlay replaces path with an empty overlay on backing,
// atomically and durably.
func writeQcow2Overlay(path, backing, backingFmt string, size int64) error {
	img, err := qcow2Overlay(backing, backingFmt, size)
	if err != nil {
		return err
	}
	return atomicfile.WriteFunc(path, 0o600, func(f *os.File) error {
		if _, err := f.Write(img); err != nil {
			return err
		}
		return f.Truncate(4 * qcow2Cluster) // the L1 cluster, a hole
	})
}

// imageVirtualSize returns the size of the disk an image file holds: the
// size field of a qcow2 header, the file size of a raw image.
func imageVirtualSize(path, format string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if format == "raw" {
		st, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	var h [32]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, fmt.Errorf("qcow2 header: %w", err)
	}
	if string(h[:4]) != "QFI\xfb" {
		return 0, errors.New("not a qcow2 image")
	}
	size := int64(binary.BigEndian.Uint64(h[24:]))
	if size <= 0 {
		return 0, errors.New("qcow2 header: bad size")
	}
	return size, nil
}
