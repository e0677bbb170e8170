package reliability_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/internal/reliability/daemonclient"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// TestContendedNames has many clients fight over a few volume names and over
// the pool itself (create, delete, upload, wipe, resize, refresh, destroy and
// start): calls may fail, but only with a libvirt error reply, the daemon
// keeps serving, and afterwards its view of the pool matches the directory.
func TestContendedNames(t *testing.T) {
	tg := startProcess(t, testkit.DaemonOptions{})
	base := shortDir(t, "vsc")
	c := dial(t, tg.rw, 0)
	poolDir := filepath.Join(base, "fight")
	if err := os.MkdirAll(poolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	xml := fmt.Sprintf("<pool type='dir'><name>fight</name><target><path>%s</path></target></pool>", poolDir)
	def, err := c.StoragePoolDefineXML(ctxFor(t), &remote.StoragePoolDefineXMLArgs{XML: xml})
	if err != nil {
		t.Fatal(err)
	}
	pool := def.Pool
	if err := c.StoragePoolCreate(ctxFor(t), &remote.StoragePoolCreateArgs{Pool: pool}); err != nil {
		t.Fatal(err)
	}

	const clients, duration = 24, 5 * time.Second
	names := []string{"a.img", "b.img", "c.img", "d.img"}
	ctx, cancel := context.WithTimeout(context.Background(), duration+callTimeout)
	defer cancel()
	until := time.Now().Add(duration)
	var ok, refused, broken atomic.Int64
	codes := sync.Map{}
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := tryDial(tg.rw, 0)
			if err != nil {
				broken.Add(1)
				return
			}
			defer cl.Conn().Close()
			for i := 0; time.Now().Before(until); i++ {
				name := names[(id*7+i)%len(names)]
				vol := remote.StorageVol{Pool: pool.Name, Name: name, Key: filepath.Join(poolDir, name)}
				var err error
				switch (id + i) % 9 {
				case 0, 1:
					_, err = daemonclient.CreateVolume(ctx, cl, pool, name, 1<<20)
				case 2:
					err = cl.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: vol})
				case 3:
					err = daemonclient.RoundTrip(ctx, cl, vol, []byte(strings.Repeat("x", 4096)), false)
				case 4:
					err = cl.StorageVolWipe(ctx, &remote.StorageVolWipeArgs{Vol: vol})
				case 5:
					err = cl.StorageVolResize(ctx, &remote.StorageVolResizeArgs{Vol: vol, Capacity: 2 << 20})
				case 6:
					err = cl.StoragePoolRefresh(ctx, &remote.StoragePoolRefreshArgs{Pool: pool})
				case 7:
					if id == 0 && i%4 == 0 {
						err = cl.StoragePoolDestroy(ctx, &remote.StoragePoolDestroyArgs{Pool: pool})
					} else {
						_, err = cl.StoragePoolListAllVolumes(ctx, &remote.StoragePoolListAllVolumesArgs{Pool: pool, NeedResults: 1})
					}
				case 8:
					err = cl.StoragePoolCreate(ctx, &remote.StoragePoolCreateArgs{Pool: pool})
				}
				switch e := daemonclient.WireError(err); {
				case err == nil:
					ok.Add(1)
				case e != nil:
					refused.Add(1)
					msg := ""
					if len(e.Message) > 0 {
						msg = e.Message[0]
						for _, n := range names {
							msg = strings.ReplaceAll(msg, n, "N")
						}
						msg = strings.ReplaceAll(msg, poolDir, "P")
					}
					codes.Store(fmt.Sprintf("%d/%d %s", e.Code, e.Domain, msg), true)
				default:
					broken.Add(1)
					t.Errorf("client %d: not a libvirt error: %v", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var seen []string
	codes.Range(func(k, _ any) bool {
		seen = append(seen, k.(string))
		return true
	})
	sort.Strings(seen)
	t.Logf("contention: %d calls succeeded, %d refused, %d broken; errors seen:\n%s", ok.Load(), refused.Load(), broken.Load(), strings.Join(seen, "\n"))
	if ok.Load() == 0 {
		t.Errorf("no call succeeded under contention")
	}
	for _, s := range seen {
		if strings.HasPrefix(s, "1/") && !strings.Contains(s, "asynchronous jobs running") {
			t.Errorf("internal error under contention: %s", s)
		}
	}

	// Settle: the pool active and refreshed, then compare with the directory.
	if active, err := c.StoragePoolIsActive(ctxFor(t), &remote.StoragePoolIsActiveArgs{Pool: pool}); err != nil {
		t.Fatal(err)
	} else if active.Active == 0 {
		if err := c.StoragePoolCreate(ctxFor(t), &remote.StoragePoolCreateArgs{Pool: pool}); err != nil {
			t.Fatal(err)
		}
	}
	var listed []string
	ok2 := waitUntil(10*time.Second, func() bool {
		if err := c.StoragePoolRefresh(ctxFor(t), &remote.StoragePoolRefreshArgs{Pool: pool}); err != nil {
			return false
		}
		r, err := c.StoragePoolListAllVolumes(ctxFor(t), &remote.StoragePoolListAllVolumesArgs{Pool: pool, NeedResults: 1})
		if err != nil {
			return false
		}
		listed = listed[:0]
		for _, v := range r.Vols {
			listed = append(listed, v.Name)
		}
		return true
	})
	if !ok2 {
		t.Fatalf("pool does not refresh after the contention")
	}
	ents, err := os.ReadDir(poolDir)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range ents {
		onDisk = append(onDisk, e.Name())
	}
	slices.Sort(listed)
	if !slices.Equal(listed, onDisk) {
		t.Errorf("after contention the daemon lists %v, the directory holds %v", listed, onDisk)
	}
	// Every listed volume is usable: deletable now that nobody holds it.
	for _, n := range listed {
		if err := c.StorageVolDelete(ctxFor(t), &remote.StorageVolDeleteArgs{Vol: remote.StorageVol{Pool: pool.Name, Name: n, Key: filepath.Join(poolDir, n)}}); err != nil {
			t.Errorf("delete %s after contention: %s", n, daemonclient.ErrText(err))
		}
	}
}

// TestMaxClientsSlotsFreed fills max_clients, checks that one more connection
// is dropped, and that slots come back once clients leave, also clients that
// vanished mid-frame.
func TestMaxClientsSlotsFreed(t *testing.T) {
	const limit = 20
	tg := startProcess(t, testkit.DaemonOptions{Config: fmt.Sprintf("max_clients = %d\n", limit)})
	open := callFrame(t, remote.ProcConnectOpen, 1, &remote.ConnectOpenArgs{})
	fill := func(round int) []net.Conn {
		t.Helper()
		conns := make([]net.Conn, 0, limit)
		for i := range limit {
			nc := rawConn(t, tg.rw)
			conns = append(conns, nc)
			_ = nc.SetDeadline(time.Now().Add(callTimeout))
			if _, err := nc.Write(open); err != nil {
				t.Fatalf("round %d, client %d: %v", round, i, err)
			}
			if _, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen); err != nil {
				t.Fatalf("round %d, client %d: no reply to open: %v", round, i, err)
			}
		}
		return conns
	}
	for round := range 3 {
		conns := fill(round)
		extra := rawConn(t, tg.rw)
		_ = extra.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = extra.Write(open)
		if _, err := xdr.ReadFrame(extra, nil, xdr.MaxFrameLen); err != io.EOF && !isReset(err) {
			t.Errorf("round %d: client %d beyond max_clients=%d: got %v, want the connection dropped", round, limit+1, limit, err)
		}
		extra.Close()
		for i, nc := range conns {
			if round == 1 && i%2 == 0 {
				_, _ = nc.Write(open[:6]) // leave mid-frame
			}
			nc.Close()
		}
		// The daemon frees slots asynchronously: wait until a new client is
		// served again before the next round fills them.
		if !waitUntil(10*time.Second, func() bool {
			c, err := tryDial(tg.rw, 0)
			if err != nil {
				return false
			}
			_ = c.Conn().Close()
			return true
		}) {
			t.Fatalf("round %d: no slot came back after %d clients left", round, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}
