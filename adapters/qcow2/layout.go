package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
)

const (
	magic           = 0x514649fb // "QFI\xfb"
	minClusterBits  = 9
	maxClusterBits  = 21
	defaultCluster  = 65536
	refcountOrder   = 4 // 16-bit refcounts, qemu-img's default refcount_bits
	maxL1Bytes      = 32 << 20
	maxBackingName  = 1023
	headerV2Len     = 72
	headerV3Len     = 112 // includes the compression type byte and its padding
	extBackingFmt   = 0xe2792aca
	extFeatureTable = 0x6803f857
	lazyRefcountBit = 1 << 0 // compatible feature bit 0
)

// featureNames is the feature name table qemu 7.2 writes into every version 3
// image whose clusters are larger than 4 KiB: type, bit, name.
var featureNames = []struct {
	typ, bit byte
	name     string
}{
	{0, 0, "dirty bit"},
	{0, 1, "corrupt bit"},
	{0, 2, "external data file"},
	{0, 3, "compression type"},
	{0, 4, "extended L2 entries"},
	{1, 0, "lazy refcounts"},
	{2, 0, "bitmaps"},
	{2, 1, "raw external data"},
}

// errGrowTable marks layouts for which qemu would have to grow the refcount
// table while creating the image.
var errGrowTable = fmt.Errorf("%w: refcount table would need to grow", ErrUnsupported)

// errAgain mirrors qemu's -EAGAIN from alloc_refcount_block: a refcount block
// was placed where the caller may have meant to put its clusters, so the
// caller undoes its partial update and searches again.
var errAgain = errors.New("qcow2: again")

// layout is a fully planned image: the header cluster and every metadata
// cluster with its final content, ready to be written.
type layout struct {
	clusterBits uint
	header      []byte   // one cluster
	reftable    []uint64 // one cluster of refcount block offsets
	refblocks   map[uint64][]uint16
	l1Offset    uint64
	l1Bytes     uint64
}

func (l *layout) clusterSize() uint64 { return 1 << l.clusterBits }

func plan(o CreateOptions) (*layout, error) {
	version, err := versionOf(o.Compat)
	if err != nil {
		return nil, err
	}
	switch o.Preallocation {
	case "", "off":
	case "metadata", "falloc", "full":
		return nil, fmt.Errorf("%w: preallocation=%s", ErrUnsupported, o.Preallocation)
	default:
		return nil, &OptionError{Option: "preallocation", Message: fmt.Sprintf("Parameter 'preallocation' does not accept value '%s'", o.Preallocation)}
	}
	switch {
	case o.ExtendedL2:
		return nil, fmt.Errorf("%w: extended_l2", ErrUnsupported)
	case o.Encrypted:
		return nil, fmt.Errorf("%w: encryption", ErrUnsupported)
	case o.DataFile != "":
		return nil, fmt.Errorf("%w: data_file", ErrUnsupported)
	}
	cs := uint64(o.ClusterSize)
	if cs == 0 {
		cs = defaultCluster
	}
	if bits.OnesCount64(cs) != 1 || cs < 1<<minClusterBits || cs > 1<<maxClusterBits {
		return nil, &OptionError{Option: "cluster_size", Message: "Cluster size must be a power of two between 512 and 2048k"}
	}
	cbits := uint(bits.TrailingZeros64(cs))
	if o.LazyRefcounts && version < 3 {
		return nil, &OptionError{Option: "lazy_refcounts", Message: "Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)"}
	}
	if o.Size > math.MaxInt64 {
		return nil, &OptionError{Option: "size", Message: "Invalid image size specified. Must be between 0 and 9223372036854775807."}
	}
	size := (o.Size + 511) &^ 511
	// One L1 entry maps one L2 table: cs/8 entries of cs bytes each.
	l1Entries := ceilDiv(size, cs*(cs/8))
	if l1Entries*8 > maxL1Bytes {
		return nil, &OptionError{Option: "size", Message: "The image size is too large for file format 'qcow2' (try using a larger cluster size)"}
	}
	if o.BackingFile != "" {
		switch {
		case o.BackingFormat == "":
			return nil, &OptionError{Option: "backing_fmt", Message: "Backing file specified without backing format"}
		case o.BackingFormat != "raw" && o.BackingFormat != "qcow2":
			// Validating other formats means opening them as qemu would.
			return nil, fmt.Errorf("%w: backing format %q", ErrUnsupported, o.BackingFormat)
		case o.Size == 0:
			// libvirt leaves out the size when it wants the backing
			// file's; only qemu-img knows every format's size.
			return nil, fmt.Errorf("%w: size taken from the backing file", ErrUnsupported)
		case len(o.BackingFile) > maxBackingName:
			return nil, fmt.Errorf("%w: backing file name too long", ErrUnsupported)
		}
	} else if o.BackingFormat != "" {
		// qemu-img accepts and ignores backing_fmt without a backing file,
		// writing no extension.
		o.BackingFormat = ""
	}

	hdr, err := buildHeader(version, cbits, size, o)
	if err != nil {
		return nil, err
	}
	s := newAllocator(cbits)
	// qemu creates the header, the reftable and one empty refcount block at
	// clusters 0, 1 and 2, then accounts for them with an ordinary
	// allocation; growing the L1 table to the virtual size comes next.
	if _, err := s.allocClusters(3); err != nil {
		return nil, err
	}
	l := &layout{clusterBits: cbits, header: hdr, reftable: s.table, refblocks: s.blocks}
	if l1Entries > 0 {
		l.l1Bytes = l1Entries * 8
		first, err := s.allocClusters(ceilDiv(l.l1Bytes, cs))
		if err != nil {
			return nil, err
		}
		l.l1Offset = first << cbits
		binary.BigEndian.PutUint32(hdr[36:], uint32(l1Entries))
		binary.BigEndian.PutUint64(hdr[40:], l.l1Offset)
	}
	return l, nil
}

func versionOf(compat string) (uint32, error) {
	switch compat {
	case "", "1.1", "v3":
		return 3, nil
	case "0.10", "v2":
		return 2, nil
	}
	return 0, &OptionError{Option: "compat", Message: fmt.Sprintf("Parameter 'version' does not accept value '%s'", compat)}
}

func buildHeader(version uint32, cbits uint, size uint64, o CreateOptions) ([]byte, error) {
	cs := uint64(1) << cbits
	h := make([]byte, cs)
	be := binary.BigEndian
	be.PutUint32(h[0:], magic)
	be.PutUint32(h[4:], version)
	be.PutUint32(h[20:], uint32(cbits))
	be.PutUint64(h[24:], size)
	be.PutUint64(h[48:], cs) // refcount table at cluster 1
	be.PutUint32(h[56:], 1)  // one reftable cluster
	off := uint64(headerV2Len)
	if version >= 3 {
		if o.LazyRefcounts {
			be.PutUint64(h[80:], lazyRefcountBit)
		}
		be.PutUint32(h[96:], refcountOrder)
		be.PutUint32(h[100:], headerV3Len)
		off = headerV3Len
	}
	add := func(extMagic uint32, data []byte) bool {
		n := uint64(len(data))
		padded := (n + 7) &^ 7
		if off+8+padded > cs {
			return false
		}
		be.PutUint32(h[off:], extMagic)
		be.PutUint32(h[off+4:], uint32(n))
		copy(h[off+8:], data)
		off += 8 + padded
		return true
	}
	if o.BackingFormat != "" && !add(extBackingFmt, []byte(o.BackingFormat)) {
		return nil, fmt.Errorf("%w: header extensions do not fit in one cluster", ErrUnsupported)
	}
	// qemu leaves the table out of small clusters so a backing file name
	// still fits.
	if version >= 3 && cs > 4096 && !add(extFeatureTable, featureTable()) {
		return nil, fmt.Errorf("%w: header extensions do not fit in one cluster", ErrUnsupported)
	}
	if !add(0, nil) {
		return nil, fmt.Errorf("%w: header extensions do not fit in one cluster", ErrUnsupported)
	}
	if o.BackingFile != "" {
		n := uint64(len(o.BackingFile))
		if off+n > cs {
			return nil, fmt.Errorf("%w: backing file name does not fit in the header cluster", ErrUnsupported)
		}
		be.PutUint64(h[8:], off)
		be.PutUint32(h[16:], uint32(n))
		copy(h[off:], o.BackingFile)
	}
	return h, nil
}

func featureTable() []byte {
	const entry = 48
	b := make([]byte, entry*len(featureNames))
	for i, f := range featureNames {
		b[i*entry] = f.typ
		b[i*entry+1] = f.bit
		copy(b[i*entry+2:(i+1)*entry], f.name)
	}
	return b
}

func ceilDiv(a, b uint64) uint64 {
	if a == 0 {
		return 0
	}
	return (a-1)/b + 1
}

func beUint32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// allocator replays qemu's cluster allocator (qcow2-refcount.c) on an image
// that qemu has just created: a one-cluster reftable at cluster 1 pointing at
// an empty refcount block at cluster 2. Placement must follow qemu's first-fit
// search and its restart-on-new-refblock rule exactly, or the metadata lands
// elsewhere than in a qemu-img-created image.
type allocator struct {
	clusterBits uint
	blockBits   uint // log2 of refcounts per refcount block
	table       []uint64
	blocks      map[uint64][]uint16 // refcount blocks by file offset
	free        uint64              // qemu's free_cluster_index
}

func newAllocator(cbits uint) *allocator {
	cs := uint64(1) << cbits
	a := &allocator{
		clusterBits: cbits,
		blockBits:   cbits + 3 - refcountOrder,
		table:       make([]uint64, cs/8),
		blocks:      map[uint64][]uint16{},
	}
	a.table[0] = 2 * cs
	a.blocks[2*cs] = make([]uint16, 1<<a.blockBits)
	return a
}

func (a *allocator) refcount(ci uint64) uint16 {
	ti := ci >> a.blockBits
	if ti >= uint64(len(a.table)) || a.table[ti] == 0 {
		return 0
	}
	return a.blocks[a.table[ti]][ci&(1<<a.blockBits-1)]
}

// allocNoref finds n free contiguous clusters from the free index on, without
// taking references, and returns the first one's index.
func (a *allocator) allocNoref(n uint64) uint64 {
retry:
	for i := uint64(0); i < n; i++ {
		ci := a.free
		a.free++
		if a.refcount(ci) != 0 {
			goto retry
		}
	}
	return a.free - n
}

// allocClusters allocates n clusters with refcount 1 and returns the first
// one's index.
func (a *allocator) allocClusters(n uint64) (uint64, error) {
	for {
		first := a.allocNoref(n)
		err := a.update(first, n, 1)
		if errors.Is(err, errAgain) {
			continue
		}
		return first, err
	}
}

// update adds addend to the refcounts of clusters [first, first+n). On a
// failure it undoes what it did, as qemu does, which is what moves the free
// index back for the caller's retry.
func (a *allocator) update(first, n uint64, addend int) error {
	var blk []uint16
	oldTI := uint64(math.MaxUint64)
	ci := first
	var err error
	for ; ci < first+n; ci++ {
		ti := ci >> a.blockBits
		if ti != oldTI {
			if blk, err = a.refblockFor(ci); err != nil {
				break
			}
		}
		oldTI = ti
		i := ci & (1<<a.blockBits - 1)
		v := int(blk[i]) + addend
		if v < 0 || v > math.MaxUint16 {
			err = fmt.Errorf("qcow2: refcount of cluster %d out of range", ci)
			break
		}
		if v == 0 && ci < a.free {
			a.free = ci
		}
		blk[i] = uint16(v)
	}
	if err != nil && ci > first {
		_ = a.update(first, ci-first, -addend)
	}
	return err
}

// refblockFor returns the refcount block covering cluster ci, allocating it
// as qemu's alloc_refcount_block does when there is none.
func (a *allocator) refblockFor(ci uint64) ([]uint16, error) {
	ti := ci >> a.blockBits
	if ti < uint64(len(a.table)) && a.table[ti] != 0 {
		return a.blocks[a.table[ti]], nil
	}
	nb := a.allocNoref(1)
	if nb>>a.blockBits == ti {
		// The new block describes itself.
		blk := make([]uint16, 1<<a.blockBits)
		blk[nb&(1<<a.blockBits-1)] = 1
		a.blocks[nb<<a.clusterBits] = blk
	} else {
		if err := a.update(nb, 1, 1); err != nil {
			return nil, err
		}
		a.blocks[nb<<a.clusterBits] = make([]uint16, 1<<a.blockBits)
	}
	if ti >= uint64(len(a.table)) {
		return nil, errGrowTable
	}
	a.table[ti] = nb << a.clusterBits
	return nil, errAgain
}

// segment is one write qemu makes when creating the image.
type segment struct {
	off  uint64
	data []byte // nil: zeros
	n    uint64
}

// segments lists the writes in file order: whole clusters for the header,
// the reftable and each refcount block, and the L1 table's exact byte length,
// which is what makes qemu's files end 8*l1_size bytes after the L1 offset.
func (l *layout) segments() []segment {
	cs := l.clusterSize()
	rt := make([]byte, cs)
	for i, v := range l.reftable {
		binary.BigEndian.PutUint64(rt[i*8:], v)
	}
	segs := []segment{{off: 0, data: l.header, n: cs}, {off: cs, data: rt, n: cs}}
	for off, blk := range l.refblocks {
		b := make([]byte, cs)
		for i, v := range blk {
			binary.BigEndian.PutUint16(b[i*2:], v)
		}
		segs = append(segs, segment{off: off, data: b, n: cs})
	}
	if l.l1Bytes > 0 {
		segs = append(segs, segment{off: l.l1Offset, n: l.l1Bytes})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].off < segs[j].off })
	return segs
}

// writeChunk bounds the buffer used to coalesce adjacent writes.
const writeChunk = 4 << 20

func (l *layout) writeTo(w interface {
	WriteAt([]byte, int64) (int, error)
}) error {
	var buf []byte
	var bufOff uint64
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		_, err := w.WriteAt(buf, int64(bufOff))
		buf = buf[:0]
		return err
	}
	for _, s := range l.segments() {
		if len(buf) > 0 && bufOff+uint64(len(buf)) != s.off {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(buf) == 0 {
			bufOff = s.off
		}
		for done := uint64(0); done < s.n; {
			if len(buf) >= writeChunk {
				if err := flush(); err != nil {
					return err
				}
				bufOff = s.off + done
			}
			take := min(s.n-done, uint64(writeChunk-len(buf)))
			if s.data != nil {
				buf = append(buf, s.data[done:done+take]...)
			} else {
				buf = append(buf, make([]byte, take)...)
			}
			done += take
		}
	}
	return flush()
}
