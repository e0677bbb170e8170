package reliability_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/internal/reliability/daemonclient"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// hostileEnv is what a hostile scenario gets: the target, a pool on it and the
// well-behaved client whose latency is watched.
type hostileEnv struct {
	tg     *target
	pool   remote.StoragePool
	normal *remote.Client
	// p99Before is the normal client's lookup p99 before any hostile client.
	p99Before time.Duration
	base      string
}

const latencySamples = 200

// TestHostileClients runs each hostile client against the real daemon process
// (fds and RSS from /proc) and against the real service in process
// (goroutines), and checks after each that the resources are back to their
// baseline and that a normal client is still served.
func TestHostileClients(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, env *hostileEnv)
	}{
		{"trickle", scenarioTrickle},
		{"max-size frames", scenarioMaxFrames},
		{"max-size frames announced, then stalled", scenarioAnnouncedFrames},
		{"never reads", scenarioNeverReads},
		{"connection storm", scenarioStorm},
		{"streams cut", scenarioStreamsCut},
	}
	for _, kind := range []string{"process", "inproc"} {
		t.Run(kind, func(t *testing.T) {
			var tg *target
			if kind == "process" {
				tg = startProcess(t, testkit.DaemonOptions{})
			} else {
				tg = startInProcess(t)
			}
			base := shortDir(t, "vsp")
			normal := dial(t, tg.rw, 0)
			env := &hostileEnv{tg: tg, normal: normal, base: base, pool: createPool(t, normal, "rel", base)}
			lat := latencies(t, normal, "rel", latencySamples)
			env.p99Before = pct(lat, 0.99)
			t.Logf("%s: normal client before: p50=%v p99=%v %s", kind, pct(lat, 0.5), env.p99Before, readProc(t, tg.pid))
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					before := snapshot(t, tg)
					sc.run(t, env)
					after := checkNoLeaks(t, tg, before)
					lat := latencies(t, normal, "rel", latencySamples)
					p99 := pct(lat, 0.99)
					t.Logf("%s/%s: after: p50=%v p99=%v (before %v); %s -> %s; goroutines %d -> %d",
						kind, sc.name, pct(lat, 0.5), p99, env.p99Before, before.proc, after, before.goroutines, numGoroutine(tg))
					if p99 > grossBound(env.p99Before) {
						t.Errorf("lookup p99 after %s: %v, before %v: gross regression", sc.name, p99, env.p99Before)
					}
				})
			}
			select {
			case <-daemonDone(tg):
				t.Fatalf("the daemon exited: %v", tg.daemon.ExitErr())
			default:
			}
		})
	}
}

func daemonDone(tg *target) <-chan struct{} {
	if tg.daemon == nil {
		return nil
	}
	return tg.daemon.Done()
}

// measureDuring runs lookups on the normal client while a hostile client is at
// work and fails on a gross slowdown.
func measureDuring(t *testing.T, env *hostileEnv, what string) {
	t.Helper()
	lat := latencies(t, env.normal, "rel", latencySamples)
	p99 := pct(lat, 0.99)
	t.Logf("%s: normal client during: p50=%v p99=%v (before %v)", what, pct(lat, 0.5), p99, env.p99Before)
	if p99 > grossBound(env.p99Before) {
		t.Errorf("lookup p99 during %s: %v, before %v: gross regression", what, p99, env.p99Before)
	}
}

// scenarioTrickle: clients that send a frame one byte a second hold a
// connection each but must not slow anyone else down.
func scenarioTrickle(t *testing.T, env *hostileEnv) {
	const tricklers = 8
	const duration = 3 * time.Second
	frame := callFrame(t, remote.ProcConnectOpen, 1, &remote.ConnectOpenArgs{})
	var wg sync.WaitGroup
	var sent, dropped atomic.Int64
	stop := make(chan struct{})
	for range tricklers {
		nc := rawConn(t, env.tg.rw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for i := 0; i < len(frame); i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := nc.Write(frame[i : i+1]); err != nil {
					dropped.Add(1)
					return
				}
				sent.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(duration)
	measureDuring(t, env, "trickle")
	time.Sleep(time.Until(deadline))
	close(stop)
	wg.Wait()
	t.Logf("trickle: %d clients sent %d bytes in %v, %d dropped by the daemon", tricklers, sent.Load(), duration, dropped.Load())
	if sent.Load() == 0 {
		t.Errorf("the tricklers could not send a single byte")
	}
}

// Memory bounds of the maximum-size scenarios, from what the daemon may hold
// at once for their clients (adapters/rpc inflight.go).
const (
	maxFrameKB        = xdr.MaxFrameLen >> 10
	bigStringKB       = remote.StringMax >> 10
	maxClientRequests = 5 // max_client_requests in the daemon's default config

	// maxFramesBoundKB bounds the RSS growth under scenarioMaxFrames' two
	// clients. The garbage frames are skipped through the connection's
	// 64 KiB read buffer, never stored: nothing. The big-call client's
	// calls go through the reader's kept buffer (4 MiB) and each holds at
	// most four strings of its 4 MiB name at once (decoded, error text and
	// detail, their copies truncated for the wire; its reply frame carries
	// two); calls and replies not yet written hold one of its
	// maxClientRequests request slots each, plus the one being read: live
	// at most 4 + 6 × 16 = 100 MiB. The collector lets the heap grow to
	// twice what was live at its last mark, whenever that was: 200 MiB,
	// plus a maximum frame of slack for its pacing and the runtime's
	// bookkeeping: 232 MiB, against 95-128 MiB measured here. (Garbage
	// frames read into buffers of their own, as the daemon used to, took it
	// to 160-177 MiB.)
	maxFramesBoundKB = 2*(bigStringKB+(maxClientRequests+1)*4*bigStringKB) + maxFrameKB

	// settledSlackKB is what RSS may stay above its level before a
	// maximum-size scenario once the daemon has given its memory back: the
	// runtime's bookkeeping for the heap it grew, the upload pool (4 MiB)
	// and the buffers the remaining clients' readers keep; measured here:
	// 1-6 MiB.
	settledSlackKB = 16 << 10

	// streamPackets is more than the request slots would let in flight if
	// packets were queued whole, so that a queue without bound would hold
	// more than streamPacketsBoundKB (12 frames, 384 MiB) whenever the
	// volume falls behind the socket.
	streamPackets = 12
	// streamPacketsBoundKB bounds the RSS growth under maxStreamPackets. A
	// connection reads upload data into at most rpc.MaxUploadInFlight of
	// buffers, reused from packet to packet, and allocates nothing of a
	// packet's size: RSS cannot grow by more than that, whenever the
	// collector runs. Slack as for TestUploadBurstMemory (burstSlackKB):
	// 20 MiB, against under 1 MiB measured here. (A buffer per packet, as
	// the daemon used to have, went to 465 MiB.)
	streamPacketsBoundKB = rpc.MaxUploadInFlight>>10 + burstSlackKB
)

// scenarioMaxFrames: frames of the largest legal length with garbage in them,
// and valid calls carrying 4 MiB strings, sent without pause.
func scenarioMaxFrames(t *testing.T, env *hostileEnv) {
	const duration = 3 * time.Second
	// 0xAB everywhere: program 0xABABABAB, type 0xABABABAB — a message the
	// server must read past and drop.
	garbage := bytes.Repeat([]byte{0xAB}, xdr.MaxFrameLen)
	binary.BigEndian.PutUint32(garbage, xdr.MaxFrameLen)
	bigName := strings.Repeat("n", int(remote.StringMax))
	bigCall := callFrame(t, remote.ProcStoragePoolLookupByName, 7, &remote.StoragePoolLookupByNameArgs{Name: bigName})
	open := callFrame(t, remote.ProcConnectOpen, 1, &remote.ConnectOpenArgs{})

	var wg sync.WaitGroup
	var garbageFrames, bigCalls, reconnects atomic.Int64
	before := readProc(t, env.tg.pid)
	// 20 ms catches a 32 MiB buffer that lives for a frame or two; the
	// figures after the run would only show what the GC kept.
	mon := watchProc(t, env.tg.pid, 20*time.Millisecond)
	stop := time.Now().Add(duration)
	// In process the race detector shadows every 32 MiB buffer, which makes
	// each frame slow and the RSS meaningless: a few frames check the
	// goroutines; the daemon process gets the sustained flood.
	limit := int64(0)
	if env.tg.inproc {
		limit = 2
	}
	more := func(count *atomic.Int64) bool {
		n := count.Load()
		if n == 0 {
			return true
		}
		return (limit == 0 || n < limit) && time.Now().Before(stop)
	}
	sender := func(payload []byte, count *atomic.Int64) {
		defer wg.Done()
		for more(count) {
			nc, err := net.DialTimeout("unix", env.tg.rw, 5*time.Second)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			reconnects.Add(1)
			// Replies are read and thrown away: this client is fast, only big.
			go func() { _, _ = io.Copy(io.Discard, nc) }()
			_ = nc.SetWriteDeadline(time.Now().Add(callTimeout))
			if _, err := nc.Write(open); err != nil {
				nc.Close()
				continue
			}
			for more(count) {
				if _, err := nc.Write(payload); err != nil {
					break
				}
				count.Add(1)
			}
			nc.Close()
		}
	}
	wg.Add(2)
	go sender(garbage, &garbageFrames)
	go sender(bigCall, &bigCalls)
	wg.Wait()
	peak := mon.halt()
	t.Logf("max-size frames: %d garbage frames of %d bytes, %d calls with 4 MiB names, %d connections; RSS %d KiB before, peak %d KiB (growth bound %d KiB, daemon process only); %s",
		garbageFrames.Load(), len(garbage), bigCalls.Load(), reconnects.Load(), before.rssKB, peak.rssKB, maxFramesBoundKB, readProc(t, env.tg.pid))
	if garbageFrames.Load() == 0 || bigCalls.Load() == 0 {
		t.Errorf("the daemon did not take a single maximum-size frame")
	}
	// RSS only means something for the daemon process: in process the
	// race detector shadows every buffer.
	if !env.tg.inproc && peak.rssKB-before.rssKB > maxFramesBoundKB {
		t.Errorf("daemon RSS grew by %d KiB (%d -> peak %d) under two clients sending maximum-size frames: over the %d KiB bound",
			peak.rssKB-before.rssKB, before.rssKB, peak.rssKB, maxFramesBoundKB)
	}

	// Once the clients are gone, the daemon gives back what the flood took.
	if !env.tg.inproc {
		settled, since := settleRSS(t, env.tg.pid, before.rssKB+settledSlackKB, time.Now())
		t.Logf("max-size frames: RSS %d KiB %v after the clients left (bound %d KiB)", settled, since.Round(time.Millisecond), before.rssKB+settledSlackKB)
		if settled > before.rssKB+settledSlackKB {
			t.Errorf("daemon RSS %d KiB a minute after the maximum-size frames, %d KiB before them: over the %d KiB bound",
				settled, before.rssKB, before.rssKB+settledSlackKB)
		}
	}

	// A 4 MiB name still gets an answer (the name does not fit in the error
	// text's bound, but the reply must come).
	_, err := env.normal.StoragePoolLookupByName(ctxFor(t), &remote.StoragePoolLookupByNameArgs{Name: bigName})
	if err == nil {
		t.Errorf("a lookup of a 4 MiB name succeeded")
	} else if daemonclient.WireError(err) == nil {
		t.Errorf("a lookup of a 4 MiB name: no libvirt error reply: %v", err)
	}
	if !env.tg.inproc {
		// Under the race detector the in-process copy of the upload takes long.
		maxStreamPackets(t, env)
	}
}

// scenarioAnnouncedFrames: waves of clients that each announce a frame of
// the largest legal length, send a little of it and stall. Memory must follow
// what they sent, not what they announced: 3 × 200 × 32 MiB would be 19 GiB.
// (The daemon used to allocate the announced length at once: 150 such clients
// took it to 2 GiB.)
func scenarioAnnouncedFrames(t *testing.T, env *hostileEnv) {
	const rounds, clients, sent = 3, 200, 1000
	head := binary.BigEndian.AppendUint32(nil, xdr.MaxFrameLen)
	head = append(head, bytes.Repeat([]byte{0x01}, sent)...)
	before := readProc(t, env.tg.pid)
	peak := before
	for range rounds {
		conns := make([]net.Conn, 0, clients)
		for range clients {
			nc := rawConn(t, env.tg.rw)
			conns = append(conns, nc)
			_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write(head); err != nil {
				t.Errorf("announcing a frame: %v", err)
			}
		}
		// Give the daemon's readers time to take the bytes in.
		time.Sleep(500 * time.Millisecond)
		if s := readProc(t, env.tg.pid); s.rssKB > peak.rssKB {
			peak = s
		}
		measureDuring(t, env, "stalled max-size frames")
		for _, nc := range conns {
			nc.Close()
		}
	}
	t.Logf("announced frames: %d × %d clients each announced %d bytes and sent %d; RSS %d KiB before, peak %d KiB",
		rounds, clients, xdr.MaxFrameLen, sent, before.rssKB, peak.rssKB)
	if !env.tg.inproc && peak.rssKB-before.rssKB > 256<<10 {
		t.Errorf("daemon RSS grew by %d KiB for %d clients that sent %d bytes each", peak.rssKB-before.rssKB, clients, sent)
	}
}

// maxStreamPackets uploads in STREAM packets of the largest legal size. The
// peak RSS, sampled during the upload, must stay within what a connection's
// upload buffers allow (streamPacketsBoundKB), whatever the upload's length.
func maxStreamPackets(t *testing.T, env *hostileEnv) {
	const packets = streamPackets
	payload := xdr.MaxFrameLen - xdr.MinFrameLen
	vol := createVol(t, env.normal, env.pool, "bigpkt.img", int64(packets*payload))
	defer deleteVol(t, env.normal, vol)
	before := readProc(t, env.tg.pid)
	mon := watchProc(t, env.tg.pid, 20*time.Millisecond)
	nc := rawConn(t, env.tg.rw)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(callTimeout))
	for serial, f := range [][]byte{callFrame(t, remote.ProcConnectOpen, 1, &remote.ConnectOpenArgs{}),
		callFrame(t, remote.ProcStorageVolUpload, 2, &remote.StorageVolUploadArgs{Vol: vol})} {
		if _, err := nc.Write(f); err != nil {
			t.Fatal(err)
		}
		if _, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen); err != nil {
			t.Fatalf("reply %d: %v", serial+1, err)
		}
	}
	pkt := streamFrame(t, remote.ProcStorageVolUpload, 2, bytes.Repeat([]byte{0xEE}, payload))
	start := time.Now()
	for i := range packets {
		if _, err := nc.Write(pkt); err != nil {
			t.Errorf("stream packet %d: %v", i, err)
			break
		}
	}
	finish := buildFrame(t, virnet.MessageHeader{Prog: remote.Program, Vers: remote.ProtocolVersion,
		Proc: int32(remote.ProcStorageVolUpload), Type: virnet.MessageTypeStream, Serial: 2, Status: virnet.MessageStatusOk}, nil, nil)
	if _, err := nc.Write(finish); err != nil {
		t.Fatal(err)
	}
	f, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen)
	if err != nil {
		t.Fatalf("finish ack: %v", err)
	}
	var h virnet.MessageHeader
	if err := h.Decode(xdr.NewDecoder(f)); err != nil || h.Status != virnet.MessageStatusOk {
		t.Errorf("finish ack: status %d, %v", h.Status, err)
	}
	peak := mon.halt()
	t.Logf("max-size stream packets: %d × %d bytes uploaded in %v; daemon RSS %d KiB before, peak %d KiB (bound %d KiB)",
		packets, payload, time.Since(start).Round(time.Millisecond), before.rssKB, peak.rssKB, streamPacketsBoundKB)
	if peak.rssKB-before.rssKB > streamPacketsBoundKB {
		t.Errorf("daemon RSS grew by %d KiB (%d -> peak %d) during an upload of %d maximum-size packets: over the %d KiB bound",
			peak.rssKB-before.rssKB, before.rssKB, peak.rssKB, packets, streamPacketsBoundKB)
	}
}

// scenarioNeverReads: a client that keeps calling and opens a download but
// never reads a reply. The daemon must stop reading from it once its replies
// back up, not buffer without bound.
func scenarioNeverReads(t *testing.T, env *hostileEnv) {
	vol := createVol(t, env.normal, env.pool, "never.img", 64<<20)
	defer deleteVol(t, env.normal, vol)
	before := readProc(t, env.tg.pid)

	nc := rawConn(t, env.tg.rw)
	defer nc.Close()
	// Keep the receive buffer small so the daemon's writes block early.
	if uc, ok := nc.(*net.UnixConn); ok {
		_ = uc.SetReadBuffer(4096)
	}
	write := func(b []byte) error {
		_ = nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := nc.Write(b)
		return err
	}
	if err := write(callFrame(t, remote.ProcConnectOpen, 1, &remote.ConnectOpenArgs{})); err != nil {
		t.Fatal(err)
	}
	if err := write(callFrame(t, remote.ProcStorageVolDownload, 2, &remote.StorageVolDownloadArgs{Vol: vol})); err != nil {
		t.Fatal(err)
	}
	ping := buildFrame(t, virnet.MessageHeader{Prog: 0x6b656570, Vers: 1, Proc: 1, Type: virnet.MessageTypeMessage}, nil, nil)
	xmlCall := func(serial uint32) []byte {
		return callFrame(t, remote.ProcStoragePoolGetXMLDesc, serial, &remote.StoragePoolGetXMLDescArgs{Pool: env.pool})
	}
	var calls, pings int
	blocked := false
	peak := before
	stop := time.Now().Add(3 * time.Second)
	for serial := uint32(3); time.Now().Before(stop); serial++ {
		err := write(xmlCall(serial))
		if err == nil {
			calls++
			if write(ping) == nil {
				pings++
			}
			continue
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Logf("never reads: the daemon hung up after %d calls: %v", calls, err)
			blocked = true
			break
		}
		blocked = true
		if s := readProc(t, env.tg.pid); s.rssKB > peak.rssKB {
			peak = s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("never reads: %d calls and %d PINGs written before the daemon stopped reading; RSS %d KiB before, peak %d KiB",
		calls, pings, before.rssKB, peak.rssKB)
	if !blocked {
		t.Errorf("the daemon read %d calls in 3s from a client that reads nothing: it buffers without bound", calls)
	}
	if !env.tg.inproc && peak.rssKB-before.rssKB > 100<<10 {
		t.Errorf("daemon RSS grew by %d KiB for a client that never reads", peak.rssKB-before.rssKB)
	}
	measureDuring(t, env, "never reads")
}

// deleteVol deletes vol, retrying while the daemon still releases it after a
// hang-up; it fails the test if that takes more than 10s.
func deleteVol(t testing.TB, c *remote.Client, vol remote.StorageVol) {
	t.Helper()
	var err error
	ok := waitUntil(10*time.Second, func() bool {
		err = c.StorageVolDelete(ctxFor(t), &remote.StorageVolDeleteArgs{Vol: vol})
		return err == nil
	})
	if !ok {
		t.Errorf("vol-delete %s after its client hung up: %s", vol.Name, daemonclient.ErrText(err))
	}
}

// scenarioStorm: a thousand connections opened and dropped, in waves, some
// in the middle of a frame.
func scenarioStorm(t *testing.T, env *hostileEnv) {
	const total, wave = 1000, 250
	open := callFrame(t, remote.ProcConnectOpen, 1, &remote.ConnectOpenArgs{})
	lookup := callFrame(t, remote.ProcStoragePoolLookupByName, 2, &remote.StoragePoolLookupByNameArgs{Name: "rel"})
	var answered atomic.Int64
	deadline := time.Now().Add(60 * time.Second)
	for done := 0; done < total && time.Now().Before(deadline); done += wave {
		conns := make([]net.Conn, 0, wave)
		var wg sync.WaitGroup
		for i := range wave {
			nc, err := net.DialTimeout("unix", env.tg.rw, 5*time.Second)
			if err != nil {
				t.Fatalf("connection %d: %v", done+i, err)
			}
			conns = append(conns, nc)
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			switch i % 5 {
			case 0: // nothing at all
			case 1: // half a length word
				_, _ = nc.Write(open[:2])
			case 2: // a length word promising more than comes
				_, _ = nc.Write(open[:4])
			case 3: // a header and half the arguments
				_, _ = nc.Write(open[:len(open)-3])
			case 4: // a full exchange, then a call left unread
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := nc.Write(append(append([]byte{}, open...), lookup...)); err != nil {
						return
					}
					if _, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen); err == nil {
						answered.Add(1)
					}
				}()
			}
		}
		wg.Wait()
		for _, nc := range conns {
			nc.Close()
		}
	}
	t.Logf("connection storm: %d connections, %d answered their open; %s", total, answered.Load(), readProc(t, env.tg.pid))
	if answered.Load() < total/5 {
		t.Errorf("only %d of %d well-formed connections got their reply", answered.Load(), total/5)
	}
}

// scenarioStreamsCut: uploads and downloads whose client hangs up in the
// middle, also mid-packet; the volume must be free again afterwards.
func scenarioStreamsCut(t *testing.T, env *hostileEnv) {
	chunk := bytes.Repeat([]byte{0x5a}, 256<<10)
	tests := []struct {
		name     string
		giveProc remote.Procedure
		// cut runs on a connection whose stream call was answered OK.
		cut func(t *testing.T, nc net.Conn, serial uint32)
	}{
		{name: "upload after data", giveProc: remote.ProcStorageVolUpload, cut: func(t *testing.T, nc net.Conn, serial uint32) {
			for range 4 {
				if _, err := nc.Write(streamFrame(t, remote.ProcStorageVolUpload, serial, chunk)); err != nil {
					t.Errorf("upload: %v", err)
					return
				}
			}
		}},
		{name: "upload mid-packet", giveProc: remote.ProcStorageVolUpload, cut: func(t *testing.T, nc net.Conn, serial uint32) {
			f := streamFrame(t, remote.ProcStorageVolUpload, serial, chunk)
			_, _ = nc.Write(f[:len(f)/2])
		}},
		{name: "upload right after the reply", giveProc: remote.ProcStorageVolUpload, cut: func(*testing.T, net.Conn, uint32) {}},
		{name: "download after one packet", giveProc: remote.ProcStorageVolDownload, cut: func(t *testing.T, nc net.Conn, _ uint32) {
			if _, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen); err != nil {
				t.Errorf("download: first packet: %v", err)
			}
		}},
		{name: "download unread", giveProc: remote.ProcStorageVolDownload, cut: func(*testing.T, net.Conn, uint32) {}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vol := createVol(t, env.normal, env.pool, "cut"+string(rune('a'+i))+".img", 16<<20)
			nc := rawConn(t, env.tg.rw)
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(callTimeout))
			var args xdr.Message = &remote.StorageVolUploadArgs{Vol: vol}
			if tt.giveProc == remote.ProcStorageVolDownload {
				args = &remote.StorageVolDownloadArgs{Vol: vol}
			}
			// One call at a time: calls of a connection run concurrently, so
			// the stream call must not overtake the open.
			for serial, f := range [][]byte{callFrame(t, remote.ProcConnectOpen, 1, &remote.ConnectOpenArgs{}), callFrame(t, tt.giveProc, 2, args)} {
				if _, err := nc.Write(f); err != nil {
					t.Fatal(err)
				}
				reply, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen)
				if err != nil {
					t.Fatalf("reply %d: %v", serial+1, err)
				}
				var h virnet.MessageHeader
				if err := h.Decode(xdr.NewDecoder(reply)); err != nil {
					t.Fatal(err)
				}
				if h.Serial != uint32(serial+1) || h.Status != virnet.MessageStatusOk {
					t.Fatalf("reply %d: serial %d status %d", serial+1, h.Serial, h.Status)
				}
			}
			tt.cut(t, nc, 2)
			nc.Close()
			deleteVol(t, env.normal, vol)
			if _, err := os.Lstat(vol.Key); err == nil {
				t.Errorf("%s still on disk after vol-delete", vol.Key)
			}
		})
	}
}

// numGoroutine counts the in-process server's goroutines (with the test's);
// a daemon process has none to count from here.
func numGoroutine(tg *target) int {
	if !tg.inproc {
		return 0
	}
	return runtime.NumGoroutine()
}
