package rbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Uploads and downloads go through rbd's diff stream ("rbd diff v1", the
// format of export-diff and import-diff): a header line, then records
// tagged by one byte, integers little-endian:
//
//	's' u64 size                 the image's size (export-diff's first record)
//	'f'/'t' u32 len, name        the snapshots a diff goes from and to
//	'w' u64 off, u64 len, data   len bytes at off
//	'z' u64 off, u64 len         len bytes at off read back as zeros
//	'e'                          end
//
// Unlike rbd export and import, the records carry offsets, so a stream can
// start anywhere in the image and skip what is not allocated: it serves
// uploads and downloads at an offset, with holes, through one process and
// without a kernel rbd device.
const diffHeader = "rbd diff v1\n"

// diffWriter writes a diff stream.
type diffWriter struct {
	w      io.Writer
	header bool
	buf    [17]byte
}

func (d *diffWriter) start() error {
	if d.header {
		return nil
	}
	d.header = true
	_, err := io.WriteString(d.w, diffHeader)
	return err
}

func (d *diffWriter) record(tag byte, off, n uint64) error {
	if err := d.start(); err != nil {
		return err
	}
	d.buf[0] = tag
	binary.LittleEndian.PutUint64(d.buf[1:9], off)
	binary.LittleEndian.PutUint64(d.buf[9:17], n)
	_, err := d.w.Write(d.buf[:])
	return err
}

// data writes p at off.
func (d *diffWriter) data(off uint64, p []byte) error {
	if err := d.record('w', off, uint64(len(p))); err != nil {
		return err
	}
	_, err := d.w.Write(p)
	return err
}

// zero makes n bytes at off read back as zeros.
func (d *diffWriter) zero(off, n uint64) error { return d.record('z', off, n) }

// end closes the stream; import-diff fails a stream cut before it.
func (d *diffWriter) end() error {
	if err := d.start(); err != nil {
		return err
	}
	_, err := d.w.Write([]byte{'e'})
	return err
}

// errDiffFormat is a diff stream that does not parse.
var errDiffFormat = errors.New("rbd: malformed diff stream")

// diffReader turns a diff stream (export-diff of a whole image, whose 'w'
// records come in ascending order) into the bytes of the image from offset
// to end: data, and holes for what no record covers.
type diffReader struct {
	r      *bufio.Reader
	sparse bool
	pos    uint64 // image offset of the next byte to deliver
	end    uint64 // where the download stops; 0 until the size is known
	length uint64 // the caller's length, 0 for all
	// The record being read: recOff is the image offset of its next byte,
	// recLeft the data bytes left of it.
	recOff, recLeft uint64
	// holeTo is where the known run of zeros from pos ends.
	holeTo  uint64
	started bool
	ended   bool // 'e' seen
}

func newDiffReader(r io.Reader, offset, length uint64, sparse bool) *diffReader {
	return &diffReader{r: bufio.NewReaderSize(r, 1<<16), sparse: sparse, pos: offset, length: length}
}

func (d *diffReader) u64() (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(d.r, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// nextRecord reads records until one gives data or zeros past pos, or the end.
func (d *diffReader) nextRecord() error {
	if !d.started {
		h := make([]byte, len(diffHeader))
		if _, err := io.ReadFull(d.r, h); err != nil {
			return err
		}
		if string(h) != diffHeader {
			return errDiffFormat
		}
		d.started = true
	}
	tag, err := d.r.ReadByte()
	if err != nil {
		return err
	}
	switch tag {
	case 's':
		size, err := d.u64()
		if err != nil {
			return err
		}
		d.end = size
		if d.length != 0 && d.pos+d.length < size {
			d.end = d.pos + d.length
		}
	case 'f', 't':
		var b [4]byte
		if _, err := io.ReadFull(d.r, b[:]); err != nil {
			return err
		}
		if _, err := d.r.Discard(int(binary.LittleEndian.Uint32(b[:]))); err != nil {
			return err
		}
	case 'w', 'z':
		off, err := d.u64()
		if err != nil {
			return err
		}
		n, err := d.u64()
		if err != nil {
			return err
		}
		if tag == 'z' {
			d.holeTo = max(d.holeTo, off+n)
			return nil
		}
		if off > d.pos {
			d.holeTo = max(d.holeTo, off)
		}
		d.recOff, d.recLeft = off, n
	case 'e':
		d.ended = true
		d.holeTo = max(d.holeTo, d.end)
	default:
		return fmt.Errorf("%w: record tag %q", errDiffFormat, tag)
	}
	return nil
}

// next is VolumeReader.Next over the stream; io.ErrUnexpectedEOF means the
// stream stopped before its end record.
func (d *diffReader) next(buf []byte) (int, int64, error) {
	for {
		if d.started && d.end != 0 && d.pos >= d.end {
			return 0, 0, io.EOF
		}
		if d.holeTo > d.pos && d.end != 0 {
			n := min(d.holeTo, d.end) - d.pos
			if d.sparse {
				d.pos += n
				return 0, int64(n), nil
			}
			n = min(n, uint64(len(buf)))
			clear(buf[:n])
			d.pos += n
			return int(n), 0, nil
		}
		if d.recLeft > 0 {
			if d.recOff < d.pos {
				skip := min(d.recLeft, d.pos-d.recOff)
				if _, err := d.r.Discard(int(skip)); err != nil {
					return 0, 0, unexpected(err)
				}
				d.recOff += skip
				d.recLeft -= skip
				continue
			}
			n := min(uint64(len(buf)), d.recLeft, d.end-d.pos)
			got, err := io.ReadFull(d.r, buf[:n])
			d.recOff += uint64(got)
			d.recLeft -= uint64(got)
			d.pos += uint64(got)
			if err != nil {
				return got, 0, unexpected(err)
			}
			return got, 0, nil
		}
		if d.ended {
			return 0, 0, io.EOF
		}
		if err := d.nextRecord(); err != nil {
			return 0, 0, unexpected(err)
		}
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
