package rpc_test

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
)

const (
	procUpload   = int32(remote.ProcStorageVolUpload)
	procDownload = int32(remote.ProcStorageVolDownload)
)

func streamHdr(proc int32, serial uint32, typ virnet.MessageType, status virnet.MessageStatus) hdr {
	return hdr{Prog: remote.Program, Vers: 1, Proc: proc, Type: typ, Serial: serial, Status: status}
}

func (r *raw) streamData(proc int32, serial uint32, data []byte) {
	r.t.Helper()
	r.write(frame(streamHdr(proc, serial, virnet.MessageTypeStream, virnet.MessageStatusContinue), nil, data))
}

func (r *raw) streamHole(proc int32, serial uint32, n int64) {
	r.t.Helper()
	r.send(streamHdr(proc, serial, virnet.MessageTypeStreamHole, virnet.MessageStatusContinue), &virnet.StreamHole{Length: n})
}

func (r *raw) streamEnd(proc int32, serial uint32, status virnet.MessageStatus) {
	r.t.Helper()
	r.send(streamHdr(proc, serial, virnet.MessageTypeStream, status), nil)
}

// startStream opens an upload or download of images/name and checks the OK reply.
func startStream(t *testing.T, r *raw, proc int32, serial uint32, name string, flags uint32) {
	t.Helper()
	vol := remote.StorageVol{Pool: "images", Name: name, Key: "/pools/images/" + name}
	if proc == procUpload {
		r.call(proc, serial, &remote.StorageVolUploadArgs{Vol: vol, Flags: flags})
	} else {
		r.call(proc, serial, &remote.StorageVolDownloadArgs{Vol: vol, Flags: flags})
	}
	h, p := r.recv()
	if h.Type != virnet.MessageTypeReply || h.Status != virnet.MessageStatusOk || h.Serial != serial {
		t.Fatalf("stream call reply %+v: %v", h, decodeErr(t, p))
	}
}

func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s never happened", what)
	}
}

// openUpload starts a daemon and an upload of images/disk.img on a new
// connection, and returns the connection and the upload's writer.
func openUpload(t *testing.T, serial, flags uint32) (*raw, *memWriter) {
	t.Helper()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	startStream(t, r, procUpload, serial, "disk.img", flags)
	return r, d.api.lastUpload()
}

// chunked is the writes a data packet of n bytes makes: the daemon reads
// upload data in chunks of 256 KiB and writes each as it comes, so that a
// packet never needs a buffer of its size.
func chunked(n int) []string {
	const chunk = 256 << 10
	var ops []string
	for ; n > chunk; n -= chunk {
		ops = append(ops, fmt.Sprintf("data %d", chunk))
	}
	return append(ops, fmt.Sprintf("data %d", n))
}

func TestUpload(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte{7}, 4194276) // go-libvirt's packet size
	tests := []struct {
		name      string
		giveFlags uint32
		give      func(r *raw, serial uint32)
		wantOps   []string
		wantReply virnet.MessageStatus // of the final stream packet
		wantClose bool
	}{
		{name: "sparse with holes", giveFlags: 1, give: func(r *raw, s uint32) {
			r.streamData(procUpload, s, []byte("abc"))
			r.streamHole(procUpload, s, 8192)
			r.streamData(procUpload, s, big)
			r.streamHole(procUpload, s, 4096)
			r.streamEnd(procUpload, s, virnet.MessageStatusOk)
		}, wantOps: slices.Concat([]string{"data 3", "hole 8192"}, chunked(len(big)), []string{"hole 4096", "finish"}),
			wantReply: virnet.MessageStatusOk},
		{name: "plain", give: func(r *raw, s uint32) {
			for i := 0; i < 4; i++ {
				r.streamData(procUpload, s, make([]byte, 262120))
			}
			r.streamEnd(procUpload, s, virnet.MessageStatusOk)
		}, wantOps: []string{"data 262120", "data 262120", "data 262120", "data 262120", "finish"}, wantReply: virnet.MessageStatusOk},
		{name: "client abort", give: func(r *raw, s uint32) {
			r.streamData(procUpload, s, []byte("abc"))
			r.streamEnd(procUpload, s, virnet.MessageStatusError)
		}, wantOps: []string{"data 3", "abort"}, wantReply: virnet.MessageStatusOk},
		{name: "hole on plain stream closes", give: func(r *raw, s uint32) {
			r.streamData(procUpload, s, []byte("abc"))
			r.streamHole(procUpload, s, 8192)
		}, wantOps: []string{"data 3", "abort"}, wantClose: true},
		{name: "hang-up aborts", give: func(r *raw, s uint32) {
			r.streamData(procUpload, s, []byte("abc"))
			time.Sleep(50 * time.Millisecond)
			r.nc.Close()
		}, wantOps: []string{"data 3", "abort"}, wantClose: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, w := openUpload(t, 40, tt.giveFlags)
			tt.give(r, 40)
			if tt.wantClose {
				if tt.name != "hang-up aborts" {
					r.expectClosed()
				}
			} else {
				h, p := r.recv()
				if h != streamHdr(procUpload, 40, virnet.MessageTypeStream, tt.wantReply) || len(p) != 0 {
					t.Fatalf("final packet %+v (%d bytes)", h, len(p))
				}
			}
			waitClosed(t, w.done, "finish or abort")
			ops, _, _ := w.result()
			if !reflect.DeepEqual(ops, tt.wantOps) {
				t.Errorf("writer ops %v, want %v", ops, tt.wantOps)
			}
			if !tt.wantClose {
				// The connection goes on; a late packet of the dead stream is ignored.
				r.streamData(procUpload, 40, []byte("late"))
				r.call(int32(remote.ProcConnectGetType), 41, nil)
				if h, _ := r.recv(); h.Serial != 41 {
					t.Errorf("after the stream: %+v", h)
				}
			}
		})
	}
}

// An upload whose volume takes nothing holds at most rpc.MaxUploadInFlight
// of its data in the daemon: the reader reads the socket until all the
// connection's upload buffers are queued, then stops, and the client's sends
// wait in the kernel. Other connections are still served; once the volume
// takes data again every byte arrives, in order.
func TestUploadInFlightIsCapped(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.api.setVol("images", "slow.img", nil)
	resume := d.api.holdWrites()
	r := dialRaw(t, d.rw)
	r.open(0)
	startStream(t, r, procUpload, 7, "slow.img", 0)
	// Four times what the daemon may hold: the client cannot get it all
	// into the kernel's socket buffers (a few hundred KiB) either.
	const packets, size = 2, 2 * rpc.MaxUploadInFlight
	data := make([]byte, packets*size)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	sent := make(chan error, 1)
	go func() {
		for p := range packets {
			f := frame(streamHdr(procUpload, 7, virnet.MessageTypeStream, virnet.MessageStatusContinue), nil, data[p*size:(p+1)*size])
			if _, err := r.nc.Write(f); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	const bufs = rpc.MaxUploadInFlight / (256 << 10)
	deadline := time.Now().Add(10 * time.Second)
	for out := 0; out != bufs; out = d.srv.UploadBuffersOut() {
		if out > bufs {
			t.Fatalf("%d upload buffers out, at most %d allowed", out, bufs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reader took only %d of its %d upload buffers in 10 s", out, bufs)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-sent:
		t.Fatalf("the client sent %d bytes (%v) while the daemon may hold %d and its volume took none", len(data), err, rpc.MaxUploadInFlight)
	default:
	}
	other := d.client(t, d.rw, "storage:///system", 0)
	if _, err := other.ConnectGetType(ctx5(t)); err != nil {
		t.Errorf("another connection while an upload is held up: %v", err)
	}
	resume()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	r.streamEnd(procUpload, 7, virnet.MessageStatusOk)
	if h, _ := r.recv(); h != streamHdr(procUpload, 7, virnet.MessageTypeStream, virnet.MessageStatusOk) {
		t.Fatalf("finish: %+v", h)
	}
	w := d.api.lastUpload()
	waitClosed(t, w.done, "finish")
	if got := w.contents(); !bytes.Equal(got, data) {
		t.Errorf("the volume got %d bytes, not the %d sent", len(got), len(data))
	}
	if out := d.srv.UploadBuffersOut(); out != 0 {
		t.Errorf("%d upload buffers still out after the upload", out)
	}
}

// A hole libvirt's virFDStreamSendHole refuses fails the stream with that
// refusal: a negative length would otherwise move the write position back
// over the data already written.
func TestUploadBadHoleFailsTheStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		give      virnet.StreamHole
		wantCode  int32
		wantError string
	}{
		{name: "negative length", give: virnet.StreamHole{Length: -4096}, wantCode: 8,
			wantError: "invalid argument: length in virFDStreamSendHole must be greater than zero"},
		{name: "zero length", give: virnet.StreamHole{Length: 0}, wantCode: 8,
			wantError: "invalid argument: length in virFDStreamSendHole must be greater than zero"},
		{name: "flags", give: virnet.StreamHole{Length: 4096, Flags: 1}, wantCode: 8,
			wantError: "unsupported flags (0x1) in function virFDStreamSendHole"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, w := openUpload(t, 5, 1)
			r.streamData(procUpload, 5, []byte("abc"))
			hole := tt.give
			r.send(streamHdr(procUpload, 5, virnet.MessageTypeStreamHole, virnet.MessageStatusContinue), &hole)
			h, p := r.recv()
			if h != streamHdr(procUpload, 5, virnet.MessageTypeStream, virnet.MessageStatusError) {
				t.Fatalf("got %+v, want STREAM ERROR", h)
			}
			e := decodeErr(t, p)
			if e.Code != tt.wantCode || e.Domain != 38 || optStr(e.Message) != tt.wantError {
				t.Errorf("stream error %d/%d %q, want %d/38 %q", e.Code, e.Domain, optStr(e.Message), tt.wantCode, tt.wantError)
			}
			waitClosed(t, w.done, "abort")
			if ops, _, _ := w.result(); !reflect.DeepEqual(ops, []string{"data 3", "abort"}) {
				t.Errorf("writer ops %v, want [data 3 abort]", ops)
			}
			// The connection goes on.
			r.call(int32(remote.ProcConnectGetType), 6, nil)
			if h, _ := r.recv(); h.Serial != 6 || h.Type != virnet.MessageTypeReply {
				t.Errorf("after the failed stream: %+v", h)
			}
		})
	}
}

func TestUploadWriteErrorSendsStreamError(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.api.setVol("images", "full.img", nil)
	r := dialRaw(t, d.rw)
	r.open(0)
	startStream(t, r, procUpload, 3, "full.img", 0)
	r.streamData(procUpload, 3, make([]byte, 64))
	h, p := r.recv()
	if h != streamHdr(procUpload, 3, virnet.MessageTypeStream, virnet.MessageStatusError) {
		t.Fatalf("got %+v, want STREAM ERROR", h)
	}
	e := decodeErr(t, p)
	if e.Code != 38 || e.Int1 != 28 || optStr(e.Message) != "cannot write to stream: No space left on device" {
		t.Errorf("stream error %d/%d %q int1 %d", e.Code, e.Domain, optStr(e.Message), e.Int1)
	}
	// The client's finish arrives for a stream that no longer exists: ignored.
	r.streamEnd(procUpload, 3, virnet.MessageStatusOk)
	r.call(int32(remote.ProcConnectGetType), 4, nil)
	if h, _ := r.recv(); h.Serial != 4 || h.Type != virnet.MessageTypeReply {
		t.Errorf("after failed upload: %+v", h)
	}
}

func TestUploadErrorBeforeStream(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(procUpload, 9, &remote.StorageVolUploadArgs{Vol: remote.StorageVol{Pool: "images", Name: "nope"}})
	h, p := r.recv()
	if h.Type != virnet.MessageTypeReply || h.Status != virnet.MessageStatusError || decodeErr(t, p).Code != 50 {
		t.Fatalf("reply %+v", h)
	}
	r.streamData(procUpload, 9, []byte("x"))
	r.expectSilence(100 * time.Millisecond)
}

// readDownload collects a download until the empty CONTINUE: data bytes and the
// sequence of packet kinds.
func readDownload(t *testing.T, r *raw, serial uint32) ([]byte, []string) {
	t.Helper()
	var data []byte
	var kinds []string
	for {
		h, p := r.recv()
		if h.Serial != serial || h.Proc != procDownload {
			t.Fatalf("foreign packet %+v", h)
		}
		switch {
		case h.Type == virnet.MessageTypeStream && h.Status == virnet.MessageStatusContinue && len(p) == 0:
			return data, append(kinds, "eof")
		case h.Type == virnet.MessageTypeStream && h.Status == virnet.MessageStatusContinue:
			data = append(data, p...)
			kinds = append(kinds, "data")
		case h.Type == virnet.MessageTypeStreamHole:
			var hole virnet.StreamHole
			decodeRet(t, p, &hole)
			data = append(data, make([]byte, hole.Length)...)
			kinds = append(kinds, "hole")
		default:
			t.Fatalf("unexpected packet %+v", h)
		}
	}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	content := []byte("hello")
	want := append(append(append(append([]byte{}, content...), make([]byte, 8192)...), content...), make([]byte, 4096)...)
	tests := []struct {
		name      string
		giveFlags uint32
		wantKinds []string
	}{
		{name: "sparse", giveFlags: 1, wantKinds: []string{"data", "hole", "data", "hole", "eof"}},
		{name: "plain gets zeros", wantKinds: []string{"data", "data", "data", "data", "eof"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t)
			d.api.setVol("images", "sparse.img", content)
			r := dialRaw(t, d.rw)
			r.open(0)
			startStream(t, r, procDownload, 12, "sparse.img", tt.giveFlags)
			data, kinds := readDownload(t, r, 12)
			if !bytes.Equal(data, want) || !reflect.DeepEqual(kinds, tt.wantKinds) {
				t.Errorf("got %d bytes %v, want %d bytes %v", len(data), kinds, len(want), tt.wantKinds)
			}
			waitClosed(t, d.api.lastReader().closed, "reader close")
			r.streamEnd(procDownload, 12, virnet.MessageStatusOk)
			if h, p := r.recv(); h != streamHdr(procDownload, 12, virnet.MessageTypeStream, virnet.MessageStatusOk) || len(p) != 0 {
				t.Errorf("finish confirmation %+v", h)
			}
		})
	}
}

// A reader that can hand out file sections has its data sent with sendfile
// when it is in memory, read first otherwise (fileReader fails any Next). A
// file that shrinks after the section was handed out ends the download where
// its data ends, as a read reaching the end does.
func TestDownloadFromFile(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	content := make([]byte, 3*mib)
	for i := range content {
		content[i] = byte(i%251 + 1)
	}
	zeros := func(n int) []byte { return make([]byte, n) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// /proc/self/cmdline cannot be mapped (nor sent with sendfile), but pread reads it.
	cmdline, err := os.ReadFile("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	sparseLayout := func() []fileSegment {
		return []fileSegment{{off: 0, n: 5}, {off: 5, n: 8192, hole: true}, {off: 8197, n: 5}, {off: 8202, n: 4096, hole: true}}
	}
	tests := []struct {
		name       string
		giveFlags  uint32
		giveFile   string // served instead of a file of giveSegs' layout
		evict      bool   // drop the file from the page cache first
		giveSegs   []fileSegment
		afterFirst func(*os.File)
		want       []byte
		// wantZerosTo allows zeros after want up to this length: a packet
		// whose length was sent before the file shrank is made whole.
		wantZerosTo int
		wantKinds   []string
		// wantSendfile and wantRead, when either is set, are the packets
		// that must have gone from the page cache and been read first.
		wantSendfile, wantRead int
		// readahead: the reads may bring in later packets, which may then go
		// by sendfile; wantRead is the least read first.
		readahead bool
	}{
		{name: "sparse", giveFlags: 1, giveSegs: sparseLayout(),
			want:      cat(content[:5], zeros(8192), content[8197:8202], zeros(4096)),
			wantKinds: []string{"data", "hole", "data", "hole", "eof"}},
		{name: "plain sends the holes' zeros", giveSegs: sparseLayout(),
			want:      cat(content[:5], zeros(8192), content[8197:8202], zeros(4096)),
			wantKinds: []string{"data", "data", "data", "data", "eof"}},
		{name: "packets of at most downloadChunk", giveSegs: []fileSegment{{off: 0, n: 3 * mib}},
			want: content, wantKinds: []string{"data", "data", "data", "eof"}, wantSendfile: 3},
		{name: "a file that cannot be mapped (procfs)", giveFile: "/proc/self/cmdline", giveSegs: []fileSegment{{off: 0, n: int64(len(cmdline))}},
			want: cmdline, wantKinds: []string{"data", "eof"}, wantRead: 1},
		{name: "not in memory", giveSegs: []fileSegment{{off: 0, n: 3 * mib}}, evict: true,
			want: content, wantKinds: []string{"data", "data", "data", "eof"}, wantRead: 1, readahead: true},
		{name: "the file shrinks", giveSegs: []fileSegment{{off: 0, n: 3 * mib}},
			afterFirst: func(f *os.File) { _ = f.Truncate(mib + mib/2) },
			want:       content[:mib+mib/2], wantZerosTo: 2 * mib, wantKinds: []string{"data", "data", "eof"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t)
			fr := d.api.setFileVol(t, "file.img", content, tt.giveSegs, tt.afterFirst)
			if tt.evict {
				fd := int(fr.f.Fd())
				if err := unix.Fdatasync(fd); err != nil {
					t.Fatal(err)
				}
				if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
					t.Fatal(err)
				}
			}
			if tt.giveFile != "" {
				f, err := os.Open(tt.giveFile)
				if err != nil {
					t.Fatal(err)
				}
				_ = fr.f.Close()
				fr.f = f
			}
			r := dialRaw(t, d.rw)
			r.open(0)
			startStream(t, r, procDownload, 12, "file.img", tt.giveFlags)
			data, kinds := readDownload(t, r, 12)
			if len(data) > len(tt.want) && len(data) <= tt.wantZerosTo && !bytes.ContainsFunc(data[len(tt.want):], func(r rune) bool { return r != 0 }) {
				data = data[:len(tt.want)]
			}
			if !bytes.Equal(data, tt.want) || !reflect.DeepEqual(kinds, tt.wantKinds) {
				t.Errorf("got %d bytes %v (equal: %v), want %d bytes %v", len(data), kinds, bytes.Equal(data, tt.want), len(tt.want), tt.wantKinds)
			}
			waitClosed(t, fr.closed, "reader close")
			if tt.wantSendfile+tt.wantRead > 0 {
				sendfile, read := downloadPaths(t, d)
				if tt.readahead && read >= tt.wantRead && sendfile+read == len(tt.wantKinds)-1 {
					t.Logf("%d packets read first, %d then by sendfile", read, sendfile)
				} else if sendfile != tt.wantSendfile || read != tt.wantRead {
					t.Errorf("%d packets by sendfile and %d read first, want %d and %d", sendfile, read, tt.wantSendfile, tt.wantRead)
				}
			}
			r.streamEnd(procDownload, 12, virnet.MessageStatusOk)
			if h, p := r.recv(); h != streamHdr(procDownload, 12, virnet.MessageTypeStream, virnet.MessageStatusOk) || len(p) != 0 {
				t.Errorf("finish confirmation %+v", h)
			}
			r.call(int32(remote.ProcConnectGetType), 13, nil)
			if h, _ := r.recv(); h.Serial != 13 || h.Status != virnet.MessageStatusOk {
				t.Errorf("call after the download: %+v", h)
			}
		})
	}
}

// downloadPaths reads the counts of the daemon's one sendfile download from
// its debug log.
func downloadPaths(t *testing.T, d *daemon) (sendfile, read int) {
	t.Helper()
	for _, e := range d.logs.AllEntries() {
		if e.Message == "rpc: download packets sent from the page cache, and read first" {
			return e.Data["sendfile"].(int), e.Data["read"].(int)
		}
	}
	t.Fatal("no log line of a sendfile download")
	return 0, 0
}

func TestDownloadNeverFinished(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	for serial := uint32(1); serial <= 3; serial++ {
		startStream(t, r, procDownload, serial, "disk.img", 0)
		if data, _ := readDownload(t, r, serial); string(data) != "hello" {
			t.Fatalf("data %q", data)
		}
		// go-libvirt never sends the finish and goes on with other calls.
		r.call(int32(remote.ProcConnectGetType), 100+serial, nil)
		if h, _ := r.recv(); h.Serial != 100+serial || h.Status != virnet.MessageStatusOk {
			t.Fatalf("call after unfinished download: %+v", h)
		}
	}
}

func TestDownloadAbort(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.api.setVol("images", "big.img", make([]byte, 8<<20))
	r := dialRaw(t, d.rw)
	r.open(0)
	startStream(t, r, procDownload, 5, "big.img", 0)
	for i := 0; i < 3; i++ {
		if h, p := r.recv(); h.Type != virnet.MessageTypeStream || len(p) == 0 {
			t.Fatalf("packet %d: %+v", i, h)
		}
	}
	r.streamEnd(procDownload, 5, virnet.MessageStatusError)
	// Packets already on their way may still arrive, then the confirmation.
	n := 0
	for {
		h, p := r.recv()
		if h.Status == virnet.MessageStatusOk && len(p) == 0 {
			break
		}
		n++
		if n > 20 {
			t.Fatal("download not stopped by the abort")
		}
	}
	waitClosed(t, d.api.lastReader().closed, "reader close")
	r.call(int32(remote.ProcConnectGetType), 6, nil)
	if h, _ := r.recv(); h.Serial != 6 {
		t.Fatalf("after abort: %+v", h)
	}
}

func TestDownloadHangUpClosesReader(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.api.setVol("images", "big.img", make([]byte, 8<<20))
	r := dialRaw(t, d.rw)
	r.open(0)
	startStream(t, r, procDownload, 5, "big.img", 0)
	r.recv()
	r.nc.Close()
	waitClosed(t, d.api.lastReader().closed, "reader close")
}

func TestManyUnfinishedDownloadsAreForgotten(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	for serial := uint32(1); serial <= 40; serial++ {
		startStream(t, r, procDownload, serial, "disk.img", 0)
		readDownload(t, r, serial)
	}
	// The newest one still gets its finish confirmed; the oldest is long gone.
	r.streamEnd(procDownload, 40, virnet.MessageStatusOk)
	if h, _ := r.recv(); h != streamHdr(procDownload, 40, virnet.MessageTypeStream, virnet.MessageStatusOk) {
		t.Errorf("finish of the newest: %+v", h)
	}
	r.streamEnd(procDownload, 1, virnet.MessageStatusOk)
	r.expectSilence(100 * time.Millisecond)
}
