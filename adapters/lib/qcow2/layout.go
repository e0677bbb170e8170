package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	header      []byte              // the header cluster's non-zero prefix
	reftable    []uint64            // the reftable cluster's leading entries, the rest are zero
	refblocks   map[uint64][]uint16 // by offset: each block's leading refcounts
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
			// qemu-img 7.2 refuses this, but only after probing the backing
			// file, whose detected format is part of its message.
			return nil, fmt.Errorf("%w: backing file without backing format", ErrUnsupported)
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
		return nil, &OptionError{Option: "backing_fmt", Message: "Backing format cannot be used without backing file"}
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
	l := &layout{clusterBits: cbits, header: hdr, refblocks: s.blocks}
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
	l.reftable = s.table // only now: growing it may have moved it
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

// headerPrefixMax bounds what precedes the end of the backing file name:
// the v3 header, the backing format and feature table extensions, the end
// marker and a 1023-byte name, with room to spare.
const headerPrefixMax = 2048

// buildHeader returns the header cluster's non-zero prefix; the rest of the
// cluster is zeros.
func buildHeader(version uint32, cbits uint, size uint64, o CreateOptions) ([]byte, error) {
	cs := uint64(1) << cbits
	h := make([]byte, min(cs, headerPrefixMax))
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
		if off+8+padded > uint64(len(h)) {
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
		if off+n > uint64(len(h)) {
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
//
// The reftable and the refcount blocks are held only up to their last
// non-zero entry, so that planning a common image allocates next to nothing.
type allocator struct {
	clusterBits uint
	blockBits   uint // log2 of refcounts per refcount block
	tableSize   uint64
	table       []uint64
	blocks      map[uint64][]uint16 // refcount blocks by file offset
	free        uint64              // qemu's free_cluster_index
}

func newAllocator(cbits uint) *allocator {
	cs := uint64(1) << cbits
	return &allocator{
		clusterBits: cbits,
		blockBits:   cbits + 3 - refcountOrder,
		tableSize:   cs / 8,
		table:       []uint64{2 * cs},
		blocks:      map[uint64][]uint16{2 * cs: nil},
	}
}

func (a *allocator) blockOffset(ti uint64) uint64 {
	if ti >= uint64(len(a.table)) {
		return 0
	}
	return a.table[ti]
}

func (a *allocator) refcount(ci uint64) uint16 {
	bo := a.blockOffset(ci >> a.blockBits)
	if bo == 0 {
		return 0
	}
	blk, i := a.blocks[bo], ci&(1<<a.blockBits-1)
	if i >= uint64(len(blk)) {
		return 0
	}
	return blk[i]
}

func (a *allocator) setRefcount(bo, i uint64, v uint16) {
	blk := a.blocks[bo]
	if i >= uint64(len(blk)) {
		if v == 0 {
			return
		}
		blk = append(blk, make([]uint16, i+1-uint64(len(blk)))...)
		a.blocks[bo] = blk
	}
	blk[i] = v
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
	var bo uint64
	oldTI := uint64(math.MaxUint64)
	ci := first
	var err error
	for ; ci < first+n; ci++ {
		ti := ci >> a.blockBits
		if ti != oldTI {
			if bo, err = a.refblockFor(ci); err != nil {
				break
			}
		}
		oldTI = ti
		v := int(a.refcount(ci)) + addend
		if v < 0 || v > math.MaxUint16 {
			err = fmt.Errorf("qcow2: refcount of cluster %d out of range", ci)
			break
		}
		if v == 0 && ci < a.free {
			a.free = ci
		}
		a.setRefcount(bo, ci&(1<<a.blockBits-1), uint16(v))
	}
	if err != nil && ci > first {
		_ = a.update(first, ci-first, -addend)
	}
	return err
}

// refblockFor returns the offset of the refcount block covering cluster ci,
// allocating the block as qemu's alloc_refcount_block does when there is
// none.
func (a *allocator) refblockFor(ci uint64) (uint64, error) {
	ti := ci >> a.blockBits
	if bo := a.blockOffset(ti); bo != 0 {
		return bo, nil
	}
	nb := a.allocNoref(1)
	nbo := nb << a.clusterBits
	if nb>>a.blockBits == ti {
		// The new block describes itself.
		a.blocks[nbo] = nil
		a.setRefcount(nbo, nb&(1<<a.blockBits-1), 1)
	} else {
		if err := a.update(nb, 1, 1); err != nil {
			return 0, err
		}
		a.blocks[nbo] = nil
	}
	if ti >= a.tableSize {
		return 0, errGrowTable
	}
	if ti >= uint64(len(a.table)) {
		a.table = append(a.table, make([]uint64, ti+1-uint64(len(a.table)))...)
	}
	a.table[ti] = nbo
	return 0, errAgain
}

// span is one write qemu makes when creating the image: whole clusters for
// the header, the reftable and each refcount block, and the L1 table's exact
// byte length, which is why qemu's files end 8*l1_size bytes past the L1
// offset.
type span struct{ off, n uint64 }

func (l *layout) spans() []span {
	cs := l.clusterSize()
	spans := []span{{0, cs}, {cs, cs}}
	for off := range l.refblocks {
		spans = append(spans, span{off, cs})
	}
	if l.l1Bytes > 0 {
		spans = append(spans, span{l.l1Offset, l.l1Bytes})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	// Merge adjacent writes into one; holes between them stay holes, as in
	// qemu's files, so that allocation (st_blocks) matches too.
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if last.off+last.n == s.off {
			last.n += s.n
		} else {
			merged = append(merged, s)
		}
	}
	return merged
}

// fill writes into dst the image bytes of [off, off+len(dst)); dst is zeroed.
func (l *layout) fill(dst []byte, off uint64) {
	end := off + uint64(len(dst))
	put := func(at uint64, b []byte) {
		if at+uint64(len(b)) <= off || at >= end {
			return
		}
		src := b
		if at < off {
			src = src[off-at:]
			at = off
		}
		copy(dst[at-off:], src)
	}
	put(0, l.header)
	cs := l.clusterSize()
	var b8 [8]byte
	for i, v := range l.reftable {
		binary.BigEndian.PutUint64(b8[:], v)
		put(cs+uint64(i)*8, b8[:])
	}
	var b2 [2]byte
	for bo, blk := range l.refblocks {
		if bo+cs <= off || bo >= end {
			continue
		}
		for i, v := range blk {
			if v != 0 {
				binary.BigEndian.PutUint16(b2[:], v)
				put(bo+uint64(i)*2, b2[:])
			}
		}
	}
}

// writeChunk bounds the buffer of one write; a larger span (a big L1 table)
// is written in pieces.
const writeChunk = 4 << 20

func (l *layout) writeTo(w io.WriterAt) error {
	spans := l.spans()
	var largest uint64
	for _, s := range spans {
		largest = max(largest, min(s.n, writeChunk))
	}
	buf := make([]byte, largest)
	for _, s := range spans {
		for done := uint64(0); done < s.n; {
			n := min(s.n-done, writeChunk)
			b := buf[:n]
			clear(b)
			l.fill(b, s.off+done)
			if _, err := w.WriteAt(b, int64(s.off+done)); err != nil {
				return err
			}
			done += n
		}
	}
	return nil
}
