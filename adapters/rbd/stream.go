package rbd

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var (
	_ ports.VolumeWriter = (*importWriter)(nil)
	_ ports.VolumeReader = (*downloadReader)(nil)
)

// importWriter feeds rbd import-diff through a pipe: each write a data
// record at the stream's position, each hole a zeroed extent.
type importWriter struct {
	d      diffWriter
	pipe   *os.File // the write end
	cancel context.CancelFunc
	done   chan error // the command's result
	// fail turns the command's failure into the operation's error.
	fail func(error) error

	pos, limit uint64
	// end is the image's size, past which nothing is written; pastEnd is
	// the error of a write that would go there.
	end     uint64
	pastEnd error
	// stall bounds how long the command may leave a write waiting, and
	// finish how long it may take to end after the stream's end. Stuck on a
	// dead OSD, import-diff goes on reading as each write in flight times
	// out (rados_osd_op_timeout), one slot at a time, and then spends
	// several more timeouts closing the image: bounded, but many times the
	// timeout. Ten writes in flight that leave the pipe unread for half the
	// timeout are writes the cluster is not doing; the upload stops there.
	stall, finishBy time.Duration
	once            sync.Once
	result          error
}

// stallWriter is a pipe whose writes fail once one has waited longer than
// stall for the reader.
type stallWriter struct {
	f     *os.File
	stall time.Duration
}

func (s stallWriter) Write(p []byte) (int, error) {
	_ = s.f.SetWriteDeadline(time.Now().Add(s.stall))
	return s.f.Write(p)
}

// stallReader is a pipe whose reads fail once one has waited longer than
// stall for the writer.
type stallReader struct {
	f     *os.File
	stall time.Duration
}

func (s stallReader) Read(p []byte) (int, error) {
	_ = s.f.SetReadDeadline(time.Now().Add(s.stall))
	return s.f.Read(p)
}

// startImport starts rbd import-diff into an image, its stdin a pipe whose
// write end the returned writer owns. The command runs on a context of its
// own, cancelled by Abort, so that the end of the call that opened an
// upload does not end the upload.
func (b *Backend) startImport(ctx context.Context, def *domain.PoolDef, c *Conn, key []byte, image string, sparse bool, format string, args ...any) (*importWriter, error) {
	pool := def.Source.Name
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, oserr.System(err, "cannot create a pipe")
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stall := b.cfg.Timeout / 2
	w := &importWriter{pipe: pw, cancel: cancel, done: make(chan error, 1), stall: stall, finishBy: b.cfg.Timeout + timeoutGrace}
	w.d.w = stallWriter{f: pw, stall: stall}
	w.fail = func(err error) error { return b.cmdError(err, c, pool, format, args...) }
	go func() {
		_, err := b.run(ctx, c, key, "rbd", false, ports.Command{StdinStream: pr}, ImportDiffArgv(pool, image, sparse))
		// Closing the read end makes a writer blocked on a full pipe fail
		// (EPIPE) instead of waiting for a reader that is gone.
		pr.Close()
		w.done <- err
	}()
	return w, nil
}

// wait closes the pipe and waits for the command (once); its failure
// becomes the writer's result.
func (w *importWriter) wait() error {
	w.once.Do(func() {
		w.pipe.Close()
		var err error
		select {
		case err = <-w.done:
		case <-time.After(w.finishBy):
			w.cancel()
			err = <-w.done
		}
		w.cancel()
		if err != nil {
			w.result = w.fail(err)
		}
	})
	return w.result
}

// failure is the error of a write that failed: the command's own (a write
// fails because the command died), else the write's. A write that waited
// too long stops the command, which then reports a timeout.
func (w *importWriter) failure(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		w.cancel()
	}
	if res := w.wait(); res != nil {
		return res
	}
	return oserr.System(err, "cannot write to the rbd import")
}

// Write stores p at the stream's position.
func (w *importWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.limit != 0 && w.pos+uint64(len(p)) > w.limit {
		return 0, domain.Errorf(domain.KindInvalidArg, "upload is longer than the %d bytes announced", w.limit)
	}
	if w.pastEnd != nil && w.pos+uint64(len(p)) > w.end {
		return 0, w.pastEnd
	}
	if err := w.d.data(w.pos, p); err != nil {
		return 0, w.failure(err)
	}
	w.pos += uint64(len(p))
	return len(p), nil
}

// Hole makes length bytes read back as zeros and moves past them.
func (w *importWriter) Hole(length int64) error {
	if length <= 0 {
		return nil
	}
	if w.pastEnd != nil && w.pos+uint64(length) > w.end {
		return w.pastEnd
	}
	if err := w.d.zero(w.pos, uint64(length)); err != nil {
		return w.failure(err)
	}
	w.pos += uint64(length)
	return nil
}

// zeros writes n zero bytes from the start, a chunk (an object) a record.
func (w *importWriter) zeros(n, chunk uint64) error {
	if chunk == 0 || chunk > 4<<20 {
		chunk = 4 << 20
	}
	buf := make([]byte, chunk)
	for off := uint64(0); off < n; off += chunk {
		if err := w.d.data(off, buf[:min(chunk, n-off)]); err != nil {
			return err
		}
	}
	return nil
}

// Finish ends the stream and waits for the command.
func (w *importWriter) Finish(ctx context.Context) error {
	err := w.d.end()
	if res := w.wait(); res != nil {
		return res
	}
	if err != nil {
		return oserr.System(err, "cannot write to the rbd import")
	}
	return nil
}

// Abort ends the stream where it is, without its end record: the command
// applies what it has read, then fails for the missing end, which is no
// failure here. What was written stays, as libvirt keeps what an aborted
// upload wrote. A command that does not end within finishBy (stuck on the
// cluster) is stopped.
func (w *importWriter) Abort() {
	w.wait()
}

// downloadReader reads rbd export-diff's stream from a pipe.
type downloadReader struct {
	d      *diffReader
	pipe   *os.File // the read end
	cancel context.CancelFunc
	done   chan error
	fail   func(error) error
	once   sync.Once
	err    error
}

// Next returns the next data or hole; a stream that ends early reports the
// command's error.
func (r *downloadReader) Next(buf []byte) (int, int64, error) {
	n, hole, err := r.d.next(buf)
	if err == nil || (n > 0 && !errors.Is(err, io.ErrUnexpectedEOF)) {
		return n, hole, nil
	}
	if errors.Is(err, io.EOF) {
		return n, hole, io.EOF
	}
	// The stream broke off: the command's exit says why.
	r.stop()
	if r.err != nil {
		return 0, 0, r.err
	}
	return 0, 0, domain.Errorf(domain.KindInternal, "rbd export-diff: %s", err.Error())
}

func (r *downloadReader) stop() {
	r.once.Do(func() {
		r.cancel()
		r.pipe.Close()
		// A command stopped because the range was delivered is no failure.
		if err := <-r.done; err != nil && (r.d.end == 0 || r.d.pos < r.d.end) {
			r.err = r.fail(err)
		}
	})
}

// Close ends the download, stopping the command if the range ended early.
func (r *downloadReader) Close() error {
	r.stop()
	return nil
}
