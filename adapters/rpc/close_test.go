package rpc_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
)

// A libvirt client hangs up as soon as it has the CONNECT_CLOSE reply. When
// the server hangs up first, the client's event loop sees the end of the
// stream and logs "End of file while reading data" (virtqemud did for 3% of
// its connections to us). With the linger far longer than the test, a client
// that looks for a moment after the reply must find the connection open, on
// every one of many connections; then its own hang-up ends the connection on
// the server too.
func TestConnectCloseLeavesTheHangUpToTheClient(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, func(c *rpc.Config) { c.CloseLinger = time.Hour })
	const clients = 100
	// How long each client looks for a premature end: closing at once after
	// the write, the server's end arrived within microseconds.
	const look = 20 * time.Millisecond
	conns := make([]*raw, clients)
	for i := range conns {
		conns[i] = dialRaw(t, d.rw)
		conns[i].open(0)
	}
	var wg sync.WaitGroup
	for i, r := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.nc.Write(frame(callHdr(remote.Program, int32(remote.ProcConnectClose), 1), nil, nil)); err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			h, _, err := r.tryRecv(10 * time.Second)
			if err != nil || h.Serial != 1 || h.Status != virnet.MessageStatusOk {
				t.Errorf("client %d: CONNECT_CLOSE reply %+v, %v", i, h, err)
				return
			}
			var ne net.Error
			if _, _, err := r.tryRecv(look); !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("client %d: the server hung up before the client did: %v", i, err)
			}
			r.nc.Close()
		}()
	}
	wg.Wait()
	// Each server side ends when its reader sees the client go.
	deadline := time.Now().Add(10 * time.Second)
	for d.srv.NumClients() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := d.srv.NumClients(); n > 0 {
		t.Errorf("%d connections still open 10s after their clients hung up", n)
	}
}

// A client that waits for the server to hang up after CONNECT_CLOSE gets the
// whole reply, then the end of the connection once the linger is over; a call
// it sends after CONNECT_CLOSE is not served.
func TestConnectCloseLingerIsBounded(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, func(c *rpc.Config) { c.CloseLinger = 500 * time.Millisecond })
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(remote.ProcConnectClose), 1, nil)
	if h, p := r.recv(); h.Serial != 1 || h.Status != virnet.MessageStatusOk || len(p) != 0 {
		t.Fatalf("CONNECT_CLOSE reply %+v %x", h, p)
	}
	// On a slow machine the linger may be over before this call goes out, and
	// the write fails: no answer either way.
	_, _ = r.nc.Write(frame(callHdr(remote.Program, int32(remote.ProcConnectGetType), 2), nil, nil))
	h, _, err := r.tryRecv(10 * time.Second)
	if err == nil {
		t.Fatalf("a call after CONNECT_CLOSE was answered: %+v", h)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("after the linger: %v, want the end of the connection", err)
	}
}
