package reliability_test

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// TestEventsToAClientThatNeverReads floods pool events while one subscriber
// never reads: the daemon must cap what it queues for that client, deliver
// every event to a subscriber that does read, and keep answering calls.
func TestEventsToAClientThatNeverReads(t *testing.T) {
	tg := startProcess(t, testkit.DaemonOptions{})
	base := shortDir(t, "vse")

	// The deaf subscriber: registered for every pool's lifecycle, then silent.
	deaf := rawConn(t, tg.rw)
	defer deaf.Close()
	if uc, ok := deaf.(*net.UnixConn); ok {
		_ = uc.SetReadBuffer(4096)
	}
	_ = deaf.SetDeadline(time.Now().Add(callTimeout))
	for serial, f := range [][]byte{callFrame(t, remote.ProcConnectOpen, 1, &remote.ConnectOpenArgs{}),
		callFrame(t, remote.ProcConnectStoragePoolEventRegisterAny, 2, &remote.ConnectStoragePoolEventRegisterAnyArgs{})} {
		if _, err := deaf.Write(f); err != nil {
			t.Fatal(err)
		}
		if _, err := xdr.ReadFrame(deaf, nil, xdr.MaxFrameLen); err != nil {
			t.Fatalf("deaf subscriber, reply %d: %v", serial+1, err)
		}
	}

	// The attentive subscriber counts what reaches it.
	good := dial(t, tg.rw, 0)
	var got atomic.Int64
	good.Conn().OnMessage(func(prog uint32, proc int32, _ []byte) {
		if prog == remote.Program && proc == int32(remote.ProcStoragePoolEventLifecycle) {
			got.Add(1)
		}
	})
	if _, err := good.ConnectStoragePoolEventRegisterAny(ctxFor(t), &remote.ConnectStoragePoolEventRegisterAnyArgs{}); err != nil {
		t.Fatal(err)
	}

	actor := dial(t, tg.rw, 0)
	before := readProc(t, tg.pid)
	mon := watchProc(t, tg.pid, 50*time.Millisecond)
	const rounds = 1000 // two events each (defined, undefined): beyond the 1024 a client may have queued
	start := time.Now()
	var slowest time.Duration
	for i := range rounds {
		xml := fmt.Sprintf("<pool type='dir'><name>ev%d</name><target><path>%s</path></target></pool>", i, filepath.Join(base, "p"))
		t0 := time.Now()
		r, err := actor.StoragePoolDefineXML(ctxFor(t), &remote.StoragePoolDefineXMLArgs{XML: xml})
		if err != nil {
			t.Fatalf("define %d: %v", i, err)
		}
		if err := actor.StoragePoolUndefine(ctxFor(t), &remote.StoragePoolUndefineArgs{Pool: r.Pool}); err != nil {
			t.Fatalf("undefine %d: %v", i, err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	want := int64(2 * rounds)
	if !waitUntil(20*time.Second, func() bool { return got.Load() >= want }) {
		t.Errorf("the attentive subscriber got %d of %d events", got.Load(), want)
	}
	peak := mon.halt()
	t.Logf("events: %d events in %v (slowest define+undefine %v) with a deaf subscriber; RSS %d KiB before, peak %d KiB",
		want, time.Since(start).Round(time.Millisecond), slowest, before.rssKB, peak.rssKB)
	if peak.rssKB-before.rssKB > 100<<10 {
		t.Errorf("daemon RSS grew by %d KiB for a subscriber that never reads", peak.rssKB-before.rssKB)
	}
	// Hanging up the deaf subscriber frees what was queued for it.
	deaf.Close()
	if !waitUntil(10*time.Second, func() bool { return readProc(t, tg.pid).fds <= before.fds-1 }) {
		t.Errorf("daemon fds %d after the deaf subscriber left, %d with it", readProc(t, tg.pid).fds, before.fds)
	}
}

// TestKeepaliveDropsSilentClients: a client that asked for keepalive and then
// neither reads nor answers PINGs is hung up after keepalive_interval ×
// keepalive_count, and its fd is released.
func TestKeepaliveDropsSilentClients(t *testing.T) {
	tg := startProcess(t, testkit.DaemonOptions{Config: "keepalive_interval = 1\nkeepalive_count = 2\n"})
	before := readProc(t, tg.pid)
	const silent = 5
	conns := make([]net.Conn, 0, silent)
	for i := range silent {
		nc := rawConn(t, tg.rw)
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(callTimeout))
		f := callFrame(t, remote.ProcConnectSupportsFeature, 1, &remote.ConnectSupportsFeatureArgs{Feature: 10})
		if _, err := nc.Write(f); err != nil {
			t.Fatal(err)
		}
		if _, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen); err != nil {
			t.Fatalf("client %d: keepalive negotiation: %v", i, err)
		}
		conns = append(conns, nc)
	}
	// A well-behaved client answers PINGs (rpcconn does) and must survive.
	good := dial(t, tg.rw, 0)
	if _, err := good.ConnectSupportsFeature(ctxFor(t), &remote.ConnectSupportsFeatureArgs{Feature: 10}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !waitUntil(15*time.Second, func() bool { return readProc(t, tg.pid).fds <= before.fds+1 }) {
		t.Errorf("silent keepalive clients not dropped within 15s: daemon fds %d, %d before", readProc(t, tg.pid).fds, before.fds)
	}
	t.Logf("keepalive: %d silent clients dropped after %v", silent, time.Since(start).Round(100*time.Millisecond))
	for i, nc := range conns {
		// The daemon's PINGs, then EOF.
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Errorf("client %d: connection not closed by the daemon: %v", i, err)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := good.ConnectGetLibVersion(ctxFor(t)); err != nil {
		t.Errorf("the client answering PINGs was dropped too: %v", err)
	}
}
