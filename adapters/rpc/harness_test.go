package rpc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
	"github.com/virtstoraged-go/virtstoraged/xdr/rpcconn"
)

// daemon is a server on three real UNIX sockets in a temporary directory.
type daemon struct {
	srv  *rpc.Server
	api  *memAPI
	hub  *rpc.EventHub
	logs *logtest.Hook
	rw   string
	ro   string
	adm  string
}

func startDaemon(t testing.TB, mods ...func(*rpc.Config)) *daemon {
	t.Helper()
	// UNIX socket paths are limited to 108 bytes; t.TempDir() embeds the test name.
	dir, err := os.MkdirTemp("", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	logger, hook := logtest.NewNullLogger()
	if _, bench := t.(*testing.B); bench {
		logger.SetLevel(logrus.InfoLevel)
	} else {
		logger.SetLevel(logrus.DebugLevel)
	}
	log := logrus.NewEntry(logger)

	cfg := rpc.Config{Limits: rpc.DefaultLimits(), Privileged: true}
	for _, m := range mods {
		m(&cfg)
	}
	api := newMemAPI()
	hub := rpc.NewEventHub(log)
	api.events = hub
	srv, err := rpc.NewServer(cfg, api, hub, log)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{srv: srv, api: api, hub: hub, logs: hook,
		rw: filepath.Join(dir, "sock"), ro: filepath.Join(dir, "sock-ro"), adm: filepath.Join(dir, "admin-sock")}
	for path, kind := range map[string]rpc.ListenerKind{d.rw: rpc.ListenRW, d.ro: rpc.ListenRO, d.adm: rpc.ListenAdmin} {
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			if err := srv.Serve(ln, kind); err != nil && !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("Serve(%s): %v", kind, err)
			}
		}()
	}
	t.Cleanup(func() {
		api.releaseSlow()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return d
}

// client opens a typed client on path and, when uri is not empty, CONNECT_OPENs it.
func (d *daemon) client(t testing.TB, path, uri string, flags uint32) *remote.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpcconn.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := remote.NewClient(c)
	if uri != "" {
		if err := cl.ConnectOpen(ctx, &remote.ConnectOpenArgs{Name: remote.OptString{uri}, Flags: flags}); err != nil {
			t.Fatalf("ConnectOpen(%q): %v", uri, err)
		}
	}
	return cl
}

func ctx5(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// raw is a client speaking hand-built frames.
type raw struct {
	t  testing.TB
	nc net.Conn
}

func dialRaw(t testing.TB, path string) *raw {
	t.Helper()
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc}
}

type hdr = virnet.MessageHeader

func callHdr(prog uint32, proc int32, serial uint32) hdr {
	return hdr{Prog: prog, Vers: 1, Proc: proc, Type: virnet.MessageTypeCall, Serial: serial, Status: virnet.MessageStatusOk}
}

func frame(h hdr, body xdr.Message, rawPayload []byte) []byte {
	e := xdr.NewEncoder(nil)
	off := xdr.StartFrame(e)
	if err := h.Encode(e); err != nil {
		panic(err)
	}
	if body != nil {
		if err := body.Encode(e); err != nil {
			panic(err)
		}
	}
	e.EncodeRaw(rawPayload)
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		panic(err)
	}
	return e.Bytes()
}

func (r *raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *raw) send(h hdr, body xdr.Message) { r.t.Helper(); r.write(frame(h, body, nil)) }

func (r *raw) call(proc int32, serial uint32, args xdr.Message) {
	r.t.Helper()
	r.send(callHdr(remote.Program, proc, serial), args)
}

// recv reads one frame within 5 s.
func (r *raw) recv() (hdr, []byte) {
	r.t.Helper()
	h, p, err := r.tryRecv(5 * time.Second)
	if err != nil {
		r.t.Fatalf("recv: %v", err)
	}
	return h, p
}

func (r *raw) tryRecv(timeout time.Duration) (hdr, []byte, error) {
	r.nc.SetReadDeadline(time.Now().Add(timeout))
	defer r.nc.SetReadDeadline(time.Time{})
	b, err := xdr.ReadFrame(r.nc, nil, xdr.MaxFrameLen)
	if err != nil {
		return hdr{}, nil, err
	}
	var h hdr
	d := xdr.NewDecoder(b)
	if err := h.Decode(d); err != nil {
		return hdr{}, nil, err
	}
	return h, d.Rest(), nil
}

// expectClosed waits for the server to hang up.
func (r *raw) expectClosed() {
	r.t.Helper()
	for {
		_, _, err := r.tryRecv(5 * time.Second)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
			return
		}
		r.t.Fatalf("connection not closed: %v", err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// expectSilence checks that nothing arrives for a while.
func (r *raw) expectSilence(d time.Duration) {
	r.t.Helper()
	h, _, err := r.tryRecv(d)
	if err == nil {
		r.t.Fatalf("unexpected frame %+v", h)
	}
}

func decodeErr(t testing.TB, p []byte) *virnet.Error {
	t.Helper()
	var e virnet.Error
	if err := e.Decode(xdr.NewDecoder(p)); err != nil {
		t.Fatalf("decode remote_error: %v", err)
	}
	return &e
}

func decodeRet(t testing.TB, p []byte, ret xdr.Message) {
	t.Helper()
	if err := ret.Decode(xdr.NewDecoder(p)); err != nil {
		t.Fatalf("decode reply: %v", err)
	}
}

// open sends CONNECT_OPEN storage:///system with flags and checks the OK reply.
func (r *raw) open(flags uint32) {
	r.t.Helper()
	r.call(int32(remote.ProcConnectOpen), 900, &remote.ConnectOpenArgs{Name: remote.OptString{"storage:///system"}, Flags: flags})
	h, p := r.recv()
	if h.Status != virnet.MessageStatusOk {
		r.t.Fatalf("CONNECT_OPEN failed: %v", decodeErr(r.t, p))
	}
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func optStr(f virnet.OptString) string {
	if len(f) == 0 {
		return "<nil>"
	}
	return f[0]
}

func logrusEntry() *logrus.Entry {
	l, _ := logtest.NewNullLogger()
	return logrus.NewEntry(l)
}
