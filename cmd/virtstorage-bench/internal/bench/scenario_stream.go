package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
)

// upload is virsh vol-upload: STORAGE_VOL_UPLOAD, then the file in Chunk-sized sends,
// then finish. rpcconn cuts each send into libvirt-sized STREAM packets.
func (e *env) upload(ctx context.Context, v remote.StorageVol, path string, offset, length int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	st, err := e.s.StorageVolUpload(ctx, &remote.StorageVolUploadArgs{Vol: v, Offset: uint64(offset), Length: uint64(length)})
	if err != nil {
		return fmt.Errorf("bench: upload: %w", err)
	}
	buf := make([]byte, min(int64(e.cfg.Chunk), length))
	for left := length; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := io.ReadFull(f, buf[:n]); err != nil {
			st.Abort() //nolint:errcheck // the read error is the one to report
			return fmt.Errorf("bench: upload source: %w", err)
		}
		if err := st.Send(buf[:n]); err != nil {
			st.Abort() //nolint:errcheck // the send error is the one to report
			return fmt.Errorf("bench: upload: %w", err)
		}
		left -= n
	}
	if err := st.Finish(); err != nil {
		return fmt.Errorf("bench: upload finish: %w", err)
	}
	return nil
}

// received is what a download brought.
type received struct {
	data, holes, holeBytes int64
}

// download receives length bytes of v from offset 0 and throws them away.
func (e *env) download(ctx context.Context, v remote.StorageVol, length int64, flags uint32) (received, error) {
	var r received
	st, err := e.s.StorageVolDownload(ctx, &remote.StorageVolDownloadArgs{Vol: v, Length: uint64(length), Flags: flags})
	if err != nil {
		return r, fmt.Errorf("bench: download: %w", err)
	}
	for {
		data, hole, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			st.Abort() //nolint:errcheck // the receive error is the one to report
			return r, fmt.Errorf("bench: download: %w", err)
		}
		if data == nil {
			r.holes++
			r.holeBytes += hole
			continue
		}
		r.data += int64(len(data))
		st.Recycle()
	}
	if err := st.Finish(); err != nil {
		return r, fmt.Errorf("bench: download finish: %w", err)
	}
	return r, nil
}

// stream is storbench's upload and download: StreamSize bytes of random data into a
// fresh raw volume, then back.
func stream(ctx context.Context, e *env, o *outcome) error {
	name, drop, err := e.poolWith(ctx, "stream", nil)
	if err != nil {
		return err
	}
	defer drop()
	p, err := e.lookupPool(ctx, name)
	if err != nil {
		return err
	}
	size := int64(e.cfg.StreamSize)
	v, err := e.s.createVol(ctx, p, volXML("bench-vsb-up.raw", size, 0, "raw"))
	if err != nil {
		return fmt.Errorf("bench: create volume: %w", err)
	}
	gib := float64(size) / (1 << 30)
	e.status("upload")
	m := e.meter()
	if err := e.upload(ctx, v, e.src, 0, size); err != nil {
		return err
	}
	c := m.stop()
	o.add("upload_mb_per_s", "MB/s", float64(size)/1e6/c.wall)
	o.add("upload_chunk", "B", float64(e.cfg.Chunk))
	o.addCPU("upload_", c, gib)
	e.status("download")
	m = e.meter()
	got, err := e.download(ctx, v, size, 0)
	if err != nil {
		return err
	}
	c = m.stop()
	if got.data != size {
		o.warn("download: got %d bytes, expected %d", got.data, size)
	}
	o.add("download_mb_per_s", "MB/s", float64(size)/1e6/c.wall)
	o.addCPU("download_", c, gib)
	return e.s.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: v})
}

// addCPU records CPU seconds per GiB moved under a prefix.
func (o *outcome) addCPU(prefix string, c cost, gib float64) {
	o.add(prefix+"client_cpu_s_per_gib", "s", c.client/gib)
	if c.hasDaemon {
		o.add(prefix+"daemon_cpu_s_per_gib", "s", c.daemon/gib)
	}
}

// writeSparse makes path a size-byte file whose data is extents equal runs of random
// bytes, spread evenly, totalling data bytes; the rest are holes.
func writeSparse(path string, size, data int64, extents int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	blk := randomBlock()
	ext, stride := data/int64(extents), size/int64(extents)
	for i := range int64(extents) {
		for off := int64(0); off < ext; {
			n := min(ext-off, int64(len(blk)))
			if _, err := f.WriteAt(blk[:n], i*stride+off); err != nil {
				f.Close()
				return fmt.Errorf("bench: %w", err)
			}
			off += n
		}
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("bench: %w", err)
	}
	return f.Close()
}

// downloadSparse is storbench's download_sparse: a SparseSize raw volume holding
// SparseData bytes in SparseExtents extents, downloaded with
// VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM (time, bytes on the wire), then without.
func downloadSparse(ctx context.Context, e *env, o *outcome) error {
	size, data, extents := int64(e.cfg.SparseSize), int64(e.cfg.SparseData), e.cfg.SparseExtents
	const file = "bench-vsb-sparse.raw"
	e.status("writing sparse file")
	name, drop, err := e.poolWith(ctx, "sparse", func(dir string) error {
		return writeSparse(filepath.Join(dir, file), size, data, extents)
	})
	if err != nil {
		return err
	}
	defer drop()
	p, err := e.lookupPool(ctx, name)
	if err != nil {
		return err
	}
	v, err := e.s.lookupVol(ctx, p, file)
	if err != nil {
		return err
	}
	want := data / int64(extents) * int64(extents)
	e.status("sparse download")
	r0 := selfReadBytes()
	m := e.meter()
	got, err := e.download(ctx, v, size, volDownloadSparseStream)
	if err != nil {
		return err
	}
	c := m.stop()
	wire := selfReadBytes() - r0
	if got.data+got.holeBytes != size || got.data != want {
		o.warn("sparse download: data=%d holes=%d hole_bytes=%d, want data=%d of %d", got.data, got.holes, got.holeBytes, want, size)
	}
	o.add("s", "s", c.wall)
	o.add("data_mb", "MB", float64(got.data)/1e6)
	o.add("holes", "", float64(got.holes))
	o.add("wire_mb", "MB", float64(wire)/1e6)
	if got.data > 0 {
		o.add("wire_overhead_pct", "%", (float64(wire)/float64(got.data)-1)*100)
	}
	o.add("client_cpu_s", "s", c.client)
	if c.hasDaemon {
		o.add("daemon_cpu_s", "s", c.daemon)
	}
	e.status("full download")
	m = e.meter()
	full, err := e.download(ctx, v, size, 0)
	if err != nil {
		return err
	}
	c = m.stop()
	if full.data != size {
		o.warn("non-sparse download: got %d bytes, expected %d", full.data, size)
	}
	o.add("nonsparse_s", "s", c.wall)
	o.addCPU("nonsparse_", c, float64(size)/(1<<30))
	return nil
}

// clone is storbench's clone: StorageVolCreateXMLFrom of a StreamSize raw volume full
// of random data.
func clone(ctx context.Context, e *env, o *outcome) error {
	const srcName, dstName = "bench-vsb-src.raw", "bench-vsb-clone.raw"
	size := int64(e.cfg.StreamSize)
	e.status("copying source")
	name, drop, err := e.poolWith(ctx, "clone", func(dir string) error {
		return copySynced(e.src, filepath.Join(dir, srcName))
	})
	if err != nil {
		return err
	}
	defer drop()
	p, err := e.lookupPool(ctx, name)
	if err != nil {
		return err
	}
	src, err := e.s.lookupVol(ctx, p, srcName)
	if err != nil {
		return err
	}
	e.status("clone")
	m := e.meter()
	r, err := e.s.StorageVolCreateXMLFrom(ctx, &remote.StorageVolCreateXMLFromArgs{
		Pool: p, XML: volXML(dstName, size, 0, "raw"), Clonevol: src,
	})
	if err != nil {
		return fmt.Errorf("bench: clone: %w", err)
	}
	c := m.stop()
	o.add("mb_per_s", "MB/s", float64(size)/1e6/c.wall)
	o.add("s", "s", c.wall)
	o.cpu(c, float64(size)/(1<<30), "s", "gib")
	return e.s.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: r.Vol})
}

// copySynced copies src to dst and syncs dst, so that writeback of the copy does not
// fall inside the measured clone.
func copySynced(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("bench: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("bench: %w", err)
	}
	return out.Close()
}
