package rpcconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/keepalive"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
	"github.com/virtstoraged-go/virtstoraged/xdr/rpcconn"
)

// peer is the server end of a connection, scripted by each test.
type peer struct {
	t  *testing.T
	nc net.Conn
}

type msg struct {
	hdr  virnet.MessageHeader
	body []byte
}

func (p *peer) read() msg {
	p.t.Helper()
	b, err := xdr.ReadFrame(p.nc, nil, xdr.MaxFrameLen)
	if err != nil {
		p.t.Fatalf("peer read: %v", err)
	}
	d := xdr.NewDecoder(b)
	var m msg
	if err := m.hdr.Decode(d); err != nil {
		p.t.Fatal(err)
	}
	m.body = d.Rest()
	return m
}

func (p *peer) send(hdr virnet.MessageHeader, body xdr.Message, raw []byte) {
	p.t.Helper()
	e := xdr.NewEncoder(nil)
	off := xdr.StartFrame(e)
	if err := hdr.Encode(e); err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		if err := body.Encode(e); err != nil {
			p.t.Fatal(err)
		}
	}
	e.EncodeRaw(raw)
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.nc.Write(e.Bytes()); err != nil {
		p.t.Errorf("peer write: %v", err)
	}
}

func (p *peer) reply(call msg, status virnet.MessageStatus, body xdr.Message) {
	h := call.hdr
	h.Type, h.Status = virnet.MessageTypeReply, status
	p.send(h, body, nil)
}

func newPair(t *testing.T) (*rpcconn.Conn, *peer) {
	t.Helper()
	a, b := net.Pipe()
	c := rpcconn.New(a)
	t.Cleanup(func() { c.Close() })
	return c, &peer{t: t, nc: b}
}

func decode(t *testing.T, body []byte, m xdr.Message) {
	t.Helper()
	if err := m.Decode(xdr.NewDecoder(body)); err != nil {
		t.Fatal(err)
	}
}

func TestCallsMatchedBySerialOutOfOrder(t *testing.T) {
	c, p := newPair(t)
	cl := remote.NewClient(c)
	ctx := context.Background()

	var wg sync.WaitGroup
	results := map[string]string{}
	var mu sync.Mutex
	for _, name := range []string{"first", "second"} {
		wg.Go(func() {
			ret, err := cl.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: name})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			results[name] = ret.Pool.Name
			mu.Unlock()
		})
	}
	calls := []msg{p.read(), p.read()}
	if calls[0].hdr.Serial == calls[1].hdr.Serial || calls[0].hdr.Serial == 0 {
		t.Errorf("serials %d and %d", calls[0].hdr.Serial, calls[1].hdr.Serial)
	}
	for _, call := range []msg{calls[1], calls[0]} { // answer in reverse order
		if call.hdr.Prog != remote.Program || call.hdr.Proc != int32(remote.ProcStoragePoolLookupByName) || call.hdr.Type != virnet.MessageTypeCall {
			t.Errorf("call header %+v", call.hdr)
		}
		var args remote.StoragePoolLookupByNameArgs
		decode(t, call.body, &args)
		p.reply(call, virnet.MessageStatusOk, &remote.StoragePoolLookupByNameRet{Pool: remote.StoragePool{Name: "pool-" + args.Name}})
	}
	wg.Wait()
	if results["first"] != "pool-first" || results["second"] != "pool-second" {
		t.Errorf("results %v", results)
	}
}

func TestErrorReply(t *testing.T) {
	c, p := newPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := remote.NewClient(c).StoragePoolLookupByName(context.Background(), &remote.StoragePoolLookupByNameArgs{Name: "x"})
		done <- err
	}()
	call := p.read()
	p.reply(call, virnet.MessageStatusError, &virnet.Error{
		Code: 49, Domain: 18, Level: 2, Int1: -1, Int2: -1,
		Message: virnet.OptString{"Storage pool not found: no storage pool with matching name 'x'"},
	})
	err := <-done
	var ve *virnet.Error
	if !errors.As(err, &ve) || ve.Code != 49 || ve.Domain != 18 {
		t.Fatalf("error %v (%T), want *virnet.Error 49/18", err, err)
	}
	if err.Error() != "Storage pool not found: no storage pool with matching name 'x'" {
		t.Errorf("message %q", err.Error())
	}
}

func TestPingIsAnsweredAndMessagesDelivered(t *testing.T) {
	c, p := newPair(t)
	got := make(chan msg, 1)
	c.OnMessage(func(prog uint32, proc int32, body []byte) {
		got <- msg{hdr: virnet.MessageHeader{Prog: prog, Proc: proc}, body: append([]byte(nil), body...)}
	})
	p.send(virnet.MessageHeader{Prog: keepalive.Program, Vers: 1, Proc: int32(keepalive.ProcPing), Type: virnet.MessageTypeMessage}, nil, nil)
	pong := p.read()
	if pong.hdr.Prog != keepalive.Program || pong.hdr.Proc != int32(keepalive.ProcPong) || pong.hdr.Type != virnet.MessageTypeMessage || len(pong.body) != 0 {
		t.Errorf("answer to PING: %+v body %x", pong.hdr, pong.body)
	}

	ev := &remote.StoragePoolEventLifecycleMsg{CallbackID: 3, Event: 2}
	p.send(virnet.MessageHeader{Prog: remote.Program, Vers: 1, Proc: int32(remote.ProcStoragePoolEventLifecycle), Type: virnet.MessageTypeMessage, Serial: 1}, ev, nil)
	select {
	case m := <-got:
		var dec remote.StoragePoolEventLifecycleMsg
		decode(t, m.body, &dec)
		if m.hdr.Prog != remote.Program || m.hdr.Proc != 370 || dec.CallbackID != 3 || dec.Event != 2 {
			t.Errorf("event %+v %+v", m.hdr, dec)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event not delivered")
	}
}

func TestUploadStream(t *testing.T) {
	c, p := newPair(t)
	done := make(chan error, 1)
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000/16)
	go func() {
		st, err := remote.NewClient(c).StorageVolUpload(context.Background(), &remote.StorageVolUploadArgs{Flags: 1})
		if err != nil {
			done <- err
			return
		}
		if err := st.Send(data); err != nil {
			done <- err
			return
		}
		if err := st.SendHole(8085504); err != nil {
			done <- err
			return
		}
		done <- st.Finish()
	}()
	call := p.read()
	p.reply(call, virnet.MessageStatusOk, nil)
	var got []byte
	for {
		m := p.read()
		if m.hdr.Serial != call.hdr.Serial || m.hdr.Proc != call.hdr.Proc {
			t.Fatalf("stream packet header %+v, want serial/proc of the call", m.hdr)
		}
		if m.hdr.Type == virnet.MessageTypeStreamHole {
			var h virnet.StreamHole
			decode(t, m.body, &h)
			if h.Length != 8085504 || m.hdr.Status != virnet.MessageStatusContinue {
				t.Errorf("hole %+v status %v", h, m.hdr.Status)
			}
			continue
		}
		if m.hdr.Status == virnet.MessageStatusOk {
			break // finish
		}
		if len(m.body) > 262120 {
			t.Errorf("packet of %d bytes, larger than libvirt's chunk", len(m.body))
		}
		got = append(got, m.body...)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("server got %d bytes, want %d", len(got), len(data))
	}
	h := call.hdr
	h.Type, h.Status = virnet.MessageTypeStream, virnet.MessageStatusOk
	p.send(h, nil, nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDownloadStream(t *testing.T) {
	c, p := newPair(t)
	type chunk struct {
		data []byte
		hole int64
	}
	done := make(chan []chunk, 1)
	errc := make(chan error, 1)
	go func() {
		st, err := remote.NewClient(c).StorageVolDownload(context.Background(), &remote.StorageVolDownloadArgs{})
		if err != nil {
			errc <- err
			return
		}
		var chunks []chunk
		for {
			d, h, err := st.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				errc <- err
				return
			}
			chunks = append(chunks, chunk{d, h})
		}
		done <- chunks
		errc <- st.Finish()
	}()
	call := p.read()
	p.reply(call, virnet.MessageStatusOk, nil)
	h := call.hdr
	h.Type, h.Status = virnet.MessageTypeStream, virnet.MessageStatusContinue
	p.send(h, nil, []byte("hello"))
	hh := h
	hh.Type = virnet.MessageTypeStreamHole
	p.send(hh, &virnet.StreamHole{Length: 4096}, nil)
	p.send(h, nil, nil) // empty CONTINUE = EOF
	chunks := <-done
	if len(chunks) != 2 || string(chunks[0].data) != "hello" || chunks[1].data != nil || chunks[1].hole != 4096 {
		t.Errorf("chunks %+v", chunks)
	}
	fin := p.read()
	if fin.hdr.Type != virnet.MessageTypeStream || fin.hdr.Status != virnet.MessageStatusOk {
		t.Errorf("finish %+v", fin.hdr)
	}
	h.Status = virnet.MessageStatusOk
	p.send(h, nil, nil)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestDownloadReadAll checks that ReadAll fills holes with zeros, finishes
// the stream, and reports a server's stream error as the recv step's.
func TestDownloadReadAll(t *testing.T) {
	t.Run("data and hole", func(t *testing.T) {
		c, p := newPair(t)
		type result struct {
			data []byte
			err  error
		}
		res := make(chan result, 1)
		go func() {
			st, err := remote.NewClient(c).StorageVolDownload(context.Background(), &remote.StorageVolDownloadArgs{})
			if err != nil {
				res <- result{err: err}
				return
			}
			data, err := st.ReadAll()
			res <- result{data, err}
		}()
		call := p.read()
		p.reply(call, virnet.MessageStatusOk, nil)
		h := call.hdr
		h.Type, h.Status = virnet.MessageTypeStream, virnet.MessageStatusContinue
		p.send(h, nil, []byte("ab"))
		hh := h
		hh.Type = virnet.MessageTypeStreamHole
		p.send(hh, &virnet.StreamHole{Length: 3}, nil)
		p.send(h, nil, []byte("c"))
		p.send(h, nil, nil)
		if fin := p.read(); fin.hdr.Type != virnet.MessageTypeStream || fin.hdr.Status != virnet.MessageStatusOk {
			t.Fatalf("finish %+v", fin.hdr)
		}
		h.Status = virnet.MessageStatusOk
		p.send(h, nil, nil)
		r := <-res
		if r.err != nil || string(r.data) != "ab\x00\x00\x00c" {
			t.Fatalf("ReadAll = %q, %v", r.data, r.err)
		}
	})
	t.Run("stream error", func(t *testing.T) {
		c, p := newPair(t)
		errc := make(chan error, 1)
		go func() {
			st, err := remote.NewClient(c).StorageVolDownload(context.Background(), &remote.StorageVolDownloadArgs{})
			if err == nil {
				_, err = st.ReadAll()
			}
			errc <- err
		}()
		call := p.read()
		p.reply(call, virnet.MessageStatusOk, nil)
		h := call.hdr
		h.Type, h.Status = virnet.MessageTypeStream, virnet.MessageStatusError
		p.send(h, &virnet.Error{Code: 1, Domain: 18, Message: virnet.OptString{"boom"}, Level: 2}, nil)
		err := <-errc
		var ve *virnet.Error
		if !errors.As(err, &ve) || !strings.HasPrefix(err.Error(), "download recv: ") {
			t.Fatalf("ReadAll error = %v", err)
		}
	})
}

// TestDownloadRecycle checks that buffers given back with Recycle are reused
// without a packet's data showing through another's.
func TestDownloadRecycle(t *testing.T) {
	c, p := newPair(t)
	const packets = 64
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000+i*997) }
	errc := make(chan error, 1)
	go func() {
		st, err := remote.NewClient(c).StorageVolDownload(context.Background(), &remote.StorageVolDownloadArgs{})
		if err != nil {
			errc <- err
			return
		}
		for i := 0; ; i++ {
			d, _, err := st.Recv()
			if err == io.EOF {
				if i != packets {
					errc <- fmt.Errorf("EOF after %d packets, want %d", i, packets)
					return
				}
				break
			}
			if err != nil {
				errc <- err
				return
			}
			if !bytes.Equal(d, payload(i)) {
				errc <- fmt.Errorf("packet %d: %d bytes starting %v, want %d bytes of %d", i, len(d), d[:min(len(d), 4)], len(payload(i)), i)
				return
			}
			st.Recycle()
		}
		errc <- st.Finish()
	}()
	call := p.read()
	p.reply(call, virnet.MessageStatusOk, nil)
	h := call.hdr
	h.Type, h.Status = virnet.MessageTypeStream, virnet.MessageStatusContinue
	for i := range packets {
		p.send(h, nil, payload(i))
	}
	p.send(h, nil, nil)
	fin := p.read()
	if fin.hdr.Status != virnet.MessageStatusOk {
		t.Errorf("finish %+v", fin.hdr)
	}
	h.Status = virnet.MessageStatusOk
	p.send(h, nil, nil)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestStreamErrorAndAbort(t *testing.T) {
	c, p := newPair(t)
	errc := make(chan error, 1)
	stc := make(chan *rpcconn.Stream, 1)
	go func() {
		st, err := c.CallStream(context.Background(), remote.Program, 1, int32(remote.ProcStorageVolUpload), &remote.StorageVolUploadArgs{})
		if err != nil {
			errc <- err
			return
		}
		stc <- st
	}()
	call := p.read()
	p.reply(call, virnet.MessageStatusOk, nil)
	st := <-stc
	h := call.hdr
	h.Type, h.Status = virnet.MessageTypeStream, virnet.MessageStatusError
	p.send(h, &virnet.Error{Code: 38, Domain: 38, Message: virnet.OptString{"cannot write to stream: No space left on device"}}, nil)
	// Whether the client still sends its finish depends on timing (as with libvirtd);
	// swallow it so the synchronous pipe cannot block.
	go io.Copy(io.Discard, p.nc) //nolint:errcheck
	err := st.Finish()
	var ve *virnet.Error
	if !errors.As(err, &ve) || ve.Code != 38 {
		t.Errorf("Finish after a server error: %v, want *virnet.Error 38", err)
	}

	// Abort of a stream: empty STREAM ERROR, then the server confirms with OK.
	c, p = newPair(t)
	go func() {
		st, err := c.CallStream(context.Background(), remote.Program, 1, int32(remote.ProcStorageVolDownload), &remote.StorageVolDownloadArgs{})
		if err != nil {
			errc <- err
			return
		}
		errc <- st.Abort()
	}()
	call = p.read()
	p.reply(call, virnet.MessageStatusOk, nil)
	ab := p.read()
	if ab.hdr.Type != virnet.MessageTypeStream || ab.hdr.Status != virnet.MessageStatusError || len(ab.body) != 0 {
		t.Errorf("abort packet %+v body %x", ab.hdr, ab.body)
	}
	h = call.hdr
	h.Type, h.Status = virnet.MessageTypeStream, virnet.MessageStatusOk
	p.send(h, nil, nil)
	if err := <-errc; err != nil {
		t.Errorf("Abort: %v", err)
	}
}

func TestCloseAndCancel(t *testing.T) {
	c, p := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Call(ctx, remote.Program, 1, int32(remote.ProcConnectClose), nil, nil) }()
	p.read()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}

	go func() {
		errc <- c.Call(context.Background(), remote.Program, 1, int32(remote.ProcConnectClose), nil, nil)
	}()
	p.read()
	p.nc.Close() // server hangs up
	if err := <-errc; !errors.Is(err, rpcconn.ErrClosed) {
		t.Errorf("call on a broken connection: %v, want ErrClosed", err)
	}
	<-c.Done()
	if err := c.Call(context.Background(), remote.Program, 1, int32(remote.ProcConnectClose), nil, nil); !errors.Is(err, rpcconn.ErrClosed) {
		t.Errorf("call after close: %v, want ErrClosed", err)
	}
}

func TestDial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		p := &peer{t: t, nc: nc}
		call := p.read()
		p.reply(call, virnet.MessageStatusOk, &remote.ConnectGetLibVersionRet{LibVer: 9000000})
	}()
	c, err := rpcconn.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ret, err := remote.NewClient(c).ConnectGetLibVersion(context.Background())
	if err != nil || ret.LibVer != 9000000 {
		t.Errorf("ConnectGetLibVersion = %+v, %v", ret, err)
	}
	if _, err := rpcconn.Dial(context.Background(), filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("Dial of a missing socket succeeded")
	}
}

// TestCancelMidFrame cancels a call whose caller is reading the socket while
// only half of a frame has arrived: the call returns at once, and the rest of
// the frame, when it comes, is read by the next reader as one frame.
func TestCancelMidFrame(t *testing.T) {
	c, p := newPair(t)
	// Let the background reader step aside for a caller: it does once a call
	// has been made.
	warm := make(chan error, 1)
	go func() {
		warm <- c.Call(context.Background(), remote.Program, 1, int32(remote.ProcConnectClose), nil, nil)
	}()
	p.reply(p.read(), virnet.MessageStatusOk, nil)
	if err := <-warm; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	var ret remote.ConnectGetTypeRet
	go func() { errc <- c.Call(ctx, remote.Program, 1, int32(remote.ProcConnectGetType), nil, &ret) }()
	call := p.read()

	// Half of the reply, then nothing until the call gave up.
	e := xdr.NewEncoder(nil)
	off := xdr.StartFrame(e)
	h := call.hdr
	h.Type, h.Status = virnet.MessageTypeReply, virnet.MessageStatusOk
	if err := h.Encode(e); err != nil {
		t.Fatal(err)
	}
	if err := (&remote.ConnectGetTypeRet{Type: "storage"}).Encode(e); err != nil {
		t.Fatal(err)
	}
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		t.Fatal(err)
	}
	whole := e.Bytes()
	if _, err := p.nc.Write(whole[:10]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call = %v, want DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("cancelled call took %v to return", waited)
	}

	// The rest of the late reply, then the answer to a new call: the reader
	// must resume inside the frame, drop the late reply and match the new one.
	next := make(chan error, 1)
	var ret2 remote.ConnectGetTypeRet
	go func() {
		next <- c.Call(context.Background(), remote.Program, 1, int32(remote.ProcConnectGetType), nil, &ret2)
	}()
	if _, err := p.nc.Write(whole[10:]); err != nil {
		t.Fatal(err)
	}
	call2 := p.read()
	p.reply(call2, virnet.MessageStatusOk, &remote.ConnectGetTypeRet{Type: "second"})
	if err := <-next; err != nil || ret2.Type != "second" {
		t.Fatalf("call after the cancelled one = %v, %q", err, ret2.Type)
	}
}

// TestMessagesBetweenCalls checks that events arriving while no call waits
// are delivered (by the background reader), also after calls have been made.
func TestMessagesBetweenCalls(t *testing.T) {
	c, p := newPair(t)
	got := make(chan int32, 4)
	c.OnMessage(func(prog uint32, proc int32, body []byte) { got <- proc })
	for i := range 3 {
		errc := make(chan error, 1)
		go func() {
			errc <- c.Call(context.Background(), remote.Program, 1, int32(remote.ProcConnectClose), nil, nil)
		}()
		p.reply(p.read(), virnet.MessageStatusOk, nil)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		p.send(virnet.MessageHeader{Prog: remote.Program, Vers: 1, Proc: int32(370 + i), Type: virnet.MessageTypeMessage}, nil, nil)
		select {
		case proc := <-got:
			if proc != int32(370+i) {
				t.Errorf("event %d: proc %d", i, proc)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d sent between calls was not delivered", i)
		}
	}
}

// TestManyCallersOneConn makes concurrent calls on one connection, answered
// in reverse order, so that replies for waiting callers are read by another
// caller.
func TestManyCallersOneConn(t *testing.T) {
	c, p := newPair(t)
	const n = 16
	type result struct {
		i   int
		got string
		err error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			var ret remote.ConnectGetTypeRet
			err := c.Call(context.Background(), remote.Program, 1, int32(remote.ProcConnectGetType), nil, &ret)
			results <- result{i, ret.Type, err}
		}()
	}
	calls := make([]msg, n)
	for i := range n {
		calls[i] = p.read()
	}
	for i := n - 1; i >= 0; i-- {
		p.reply(calls[i], virnet.MessageStatusOk, &remote.ConnectGetTypeRet{Type: fmt.Sprintf("serial-%d", calls[i].hdr.Serial)})
	}
	seen := map[string]bool{}
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		seen[r.got] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct replies for %d calls: %v", len(seen), n, seen)
	}
}
