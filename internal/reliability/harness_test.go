package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/adapters/statefile"
	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/internal/reliability/daemonclient"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// callTimeout bounds every single call a test makes: a daemon that stops
// answering fails the test instead of hanging the binary.
const callTimeout = 30 * time.Second

// target is a daemon under test: the real process (fds and RSS from /proc) or
// the real service and RPC server inside the test binary (goroutines too).
type target struct {
	name   string
	rw, ro string
	root   string
	// pid is the process whose fds and memory are watched: the daemon's, or
	// the test binary's own for an in-process server.
	pid    int
	inproc bool
	daemon *testkit.Daemon
}

// shortDir is a fresh directory with a short path: UNIX socket paths are
// limited to 108 bytes and t.TempDir embeds the test name.
func shortDir(t testing.TB, prefix string) string {
	t.Helper()
	return shortDirIn(t, "", prefix)
}

// shortDirIn is shortDir under parent ("": the default temporary directory).
func shortDirIn(t testing.TB, parent, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// startProcess runs the built daemon under its own root.
func startProcess(t testing.TB, opts testkit.DaemonOptions) *target {
	t.Helper()
	d := testkit.StartDaemon(t, opts)
	return &target{name: "process", rw: d.SocketPath(), ro: d.ROSocketPath(), root: d.Root, pid: d.Pid(), daemon: d}
}

// startInProcess assembles what cmd/virtstoraged assembles (dir backend, XML
// codec, state files, event hub, service, RPC server) on sockets under a short
// temporary root, and shuts it down when the test ends.
func startInProcess(t testing.TB) *target {
	t.Helper()
	root := shortDir(t, "vsr")
	logger := logrus.New()
	lw := &logWriter{t: t}
	// Registered first, so it runs last: after the shutdown below, stray log
	// lines must not reach a finished test.
	t.Cleanup(lw.stop)
	logger.SetOutput(lw)
	logger.SetLevel(logrus.WarnLevel)
	log := logrus.NewEntry(logger)
	store, err := statefile.New(filepath.Join(root, "etc/storage"), filepath.Join(root, "etc/storage/autostart"),
		filepath.Join(root, "run/storage"), log)
	if err != nil {
		t.Fatal(err)
	}
	hub := rpc.NewEventHub(log)
	svc, err := service.New(service.Config{NoAutostart: true}, []ports.PoolBackend{dir.New(osexec.New(log), log)},
		xmldef.New(), store, hub, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := rpc.NewServer(rpc.Config{Limits: rpc.DefaultLimits(), Privileged: os.Geteuid() == 0}, svc, hub, log)
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{name: "inproc", rw: filepath.Join(root, "sock"), ro: filepath.Join(root, "sock-ro"), root: root,
		pid: os.Getpid(), inproc: true}
	done := make(chan struct{}, 2)
	for _, l := range []struct {
		path string
		kind rpc.ListenerKind
	}{{tg.rw, rpc.ListenRW}, {tg.ro, rpc.ListenRO}} {
		ln, err := net.Listen("unix", l.path)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = srv.Serve(ln, l.kind)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("rpc shutdown: %v", err)
		}
		if err := svc.Shutdown(ctx); err != nil {
			t.Errorf("service shutdown: %v", err)
		}
		<-done
		<-done
	})
	return tg
}

// logWriter sends the in-process daemon's warnings to the test log, so that
// they show next to a failure.
type logWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Logf("daemon: %s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// dial connects to sock and opens the connection with flags (1 = read-only).
func dial(t testing.TB, sock string, flags uint32) *remote.Client {
	t.Helper()
	c, err := tryDial(sock, flags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Conn().Close() })
	return c
}

// tryDial is dial for goroutines, which must not call t.Fatal.
func tryDial(sock string, flags uint32) (*remote.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return daemonclient.Dial(ctx, sock, flags)
}

// ctxFor returns a context bounded by callTimeout, cancelled at test end.
func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// createPool starts a transient dir pool on a fresh directory under base.
func createPool(t testing.TB, c *remote.Client, name, base string) remote.StoragePool {
	t.Helper()
	path := filepath.Join(base, name)
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	xml := fmt.Sprintf("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", name, path)
	ret, err := c.StoragePoolCreateXML(ctxFor(t), &remote.StoragePoolCreateXMLArgs{XML: xml})
	if err != nil {
		t.Fatalf("create pool %s: %v", name, err)
	}
	return ret.Pool
}

// createVol makes a raw volume of size bytes.
func createVol(t testing.TB, c *remote.Client, pool remote.StoragePool, name string, size int64) remote.StorageVol {
	t.Helper()
	v, err := daemonclient.CreateVolume(ctxFor(t), c, pool, name, size)
	if err != nil {
		t.Fatalf("create volume %s: %v", name, err)
	}
	return v
}

// latencies runs n pool lookups on c one after the other and returns the
// sorted durations; an error fails the test.
func latencies(t testing.TB, c *remote.Client, pool string, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := c.StoragePoolLookupByName(ctxFor(t), &remote.StoragePoolLookupByNameArgs{Name: pool}); err != nil {
			t.Fatalf("lookup of %s: %v", pool, err)
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

// pct returns the q-quantile (0..1) of sorted durations.
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// grossBound is the latency after a hostile client that counts as a gross
// regression: timing is never asserted tightly (CI machines stall), only a
// hundredfold slowdown that also exceeds a second.
func grossBound(before time.Duration) time.Duration {
	return max(100*before, time.Second)
}

// procStats is what /proc says about a process.
type procStats struct {
	fds     int
	rssKB   int64
	threads int
}

func (s procStats) String() string {
	return fmt.Sprintf("fds=%d rss=%.1fMiB threads=%d", s.fds, float64(s.rssKB)/1024, s.threads)
}

// readProc counts pid's open fds and reads its RSS and threads; a vanished
// process fails the test.
func readProc(t testing.TB, pid int) procStats {
	t.Helper()
	var s procStats
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("read fds of %d: %v", pid, err)
	}
	s.fds = len(ents)
	st := statusOf(pid)
	s.rssKB, s.threads = st.rssKB, st.threads
	return s
}

// statusOf reads VmRSS and Threads from /proc/PID/status; zero when the
// process is gone.
func statusOf(pid int) procStats {
	var s procStats
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rssKB = n
		case "Threads":
			s.threads = int(n)
		}
	}
	return s
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// baseline is a snapshot of a target's resources to compare against later.
type baseline struct {
	goroutines int
	proc       procStats
}

func snapshot(t testing.TB, tg *target) baseline {
	t.Helper()
	// Let goroutines of earlier connections finish before counting.
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
	return baseline{goroutines: runtime.NumGoroutine(), proc: readProc(t, tg.pid)}
}

// settleSlack absorbs goroutines and fds that come and go independently of the
// scenario (the race detector, the runtime's timers, logging).
const settleSlack = 3

// checkNoLeaks waits for the target's fds (and, in process, goroutines) to fall
// back to the baseline, and fails with a goroutine dump when they do not.
func checkNoLeaks(t testing.TB, tg *target, base baseline) procStats {
	t.Helper()
	var now procStats
	ok := waitUntil(15*time.Second, func() bool {
		now = readProc(t, tg.pid)
		if now.fds > base.proc.fds+settleSlack {
			return false
		}
		return !tg.inproc || runtime.NumGoroutine() <= base.goroutines+settleSlack
	})
	if !ok {
		var b strings.Builder
		if tg.inproc {
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		}
		t.Errorf("%s: resources not back to baseline within 15s: fds %d -> %d, goroutines %d -> %d\n%s",
			tg.name, base.proc.fds, now.fds, base.goroutines, runtime.NumGoroutine(), b.String())
	}
	return now
}

// rawConn is a bare socket for clients that break the protocol on purpose.
func rawConn(t testing.TB, sock string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// callFrame builds one CALL frame of the remote program.
func callFrame(t testing.TB, proc remote.Procedure, serial uint32, args xdr.Message) []byte {
	t.Helper()
	return buildFrame(t, virnet.MessageHeader{Prog: remote.Program, Vers: remote.ProtocolVersion, Proc: int32(proc),
		Type: virnet.MessageTypeCall, Serial: serial, Status: virnet.MessageStatusOk}, args, nil)
}

// streamFrame builds a STREAM CONTINUE packet of the stream opened by the call
// proc/serial.
func streamFrame(t testing.TB, proc remote.Procedure, serial uint32, data []byte) []byte {
	t.Helper()
	return buildFrame(t, virnet.MessageHeader{Prog: remote.Program, Vers: remote.ProtocolVersion, Proc: int32(proc),
		Type: virnet.MessageTypeStream, Serial: serial, Status: virnet.MessageStatusContinue}, nil, data)
}

// buildFrame encodes hdr, then args, then raw bytes unchanged, behind the
// length word.
func buildFrame(t testing.TB, hdr virnet.MessageHeader, args xdr.Message, raw []byte) []byte {
	t.Helper()
	e := xdr.NewEncoder(make([]byte, 0, xdr.MinFrameLen+len(raw)+64))
	off := xdr.StartFrame(e)
	if err := hdr.Encode(e); err != nil {
		t.Fatal(err)
	}
	if args != nil {
		if err := args.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	e.EncodeRaw(raw)
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		t.Fatal(err)
	}
	return e.Bytes()
}
