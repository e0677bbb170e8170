package faults_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// Knobs for longer crash runs: VS_CRASH_ITERATIONS (default 90: ten kills in
// each operation), VS_CRASH_BUDGET (a duration, default 90s: the loop stops
// early when spent, and the test fails if that left an operation with fewer
// than minCrashShare of its kills) and VS_CRASH_SEED (to replay a run; the
// seed is logged).
// minCrashShare is the part of each operation's kills a run must make to
// pass. The budget only guards against a machine so slow that the run would
// outlast CI's timeout; without a floor, such a machine would pass with a
// handful of kills and the harness would quietly test almost nothing.
const minCrashShare = 0.9

func crashKnobs(t *testing.T) (iters int, budget time.Duration, seed uint64) {
	iters, budget = 10*len(crashOps), 90*time.Second
	if s := os.Getenv("VS_CRASH_ITERATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("VS_CRASH_ITERATIONS: %v", err)
		}
		iters = n
	}
	if s := os.Getenv("VS_CRASH_BUDGET"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("VS_CRASH_BUDGET: %v", err)
		}
		budget = d
	}
	seed = uint64(time.Now().UnixNano())
	if s := os.Getenv("VS_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("VS_CRASH_SEED: %v", err)
		}
		seed = n
	}
	return iters, budget, seed
}

// crashRun is the state of one crash test: a daemon, its pools' directories
// and the operations tried so far.
type crashRun struct {
	t     *testing.T
	d     *testkit.Daemon
	pools string // parent of every pool's target directory
	rng   *mrand.Rand
	n     int
	// l is a go-libvirt connection for the checks, much faster than a virsh
	// process per question; nil between a kill and the next check.
	l *libvirt.Libvirt
}

func (c *crashRun) virsh(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.d.Virsh(args...)
	if code != 0 {
		c.t.Fatalf("virsh %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// connect opens the checks' go-libvirt connection.
func (c *crashRun) connect() {
	c.t.Helper()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(c.d.SocketPath()), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(libvirt.ConnectURI("storage:///system")); err != nil {
		c.t.Fatalf("go-libvirt connect: %v", err)
	}
	c.l = l
}

// poolNames lists the pools matching flags, sorted.
func (c *crashRun) poolNames(flags libvirt.ConnectListAllStoragePoolsFlags) []string {
	c.t.Helper()
	pools, _, err := c.l.ConnectListAllStoragePools(1, flags)
	if err != nil {
		c.t.Fatalf("list pools (flags %d): %v", flags, err)
	}
	out := []string{}
	for _, p := range pools {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// volNames lists a pool's volumes, sorted.
func (c *crashRun) volNames(pool string) []string {
	c.t.Helper()
	p, err := c.l.StoragePoolLookupByName(pool)
	if err != nil {
		c.t.Fatalf("lookup pool %s: %v", pool, err)
	}
	vols, _, err := c.l.StoragePoolListAllVolumes(p, 1, 0)
	if err != nil {
		c.t.Fatalf("list volumes of %s: %v", pool, err)
	}
	out := []string{}
	for _, v := range vols {
		out = append(out, v.Name)
	}
	slices.Sort(out)
	return out
}

func (c *crashRun) definePool(name string, mkdir bool) {
	c.t.Helper()
	target := filepath.Join(c.pools, name)
	if mkdir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			c.t.Fatal(err)
		}
	}
	c.virsh("pool-define-as", name, "dir", "--target", target)
}

// crashOp is one operation to kill the daemon in. prepare runs with the
// daemon alive and c.l connected; it returns the pool the operation acts on,
// the operation as virsh arguments, and the same operation as a go-libvirt
// call on c.l (whose lookups prepare already did, so that the call starts at
// once and a short delay lands inside it).
type crashOp struct {
	name    string
	prepare func(c *crashRun) (pool string, args []string, call func(l *libvirt.Libvirt) error)
}

func (c *crashRun) lookupPool(name string) libvirt.StoragePool {
	c.t.Helper()
	p, err := c.l.StoragePoolLookupByName(name)
	if err != nil {
		c.t.Fatalf("lookup pool %s: %v", name, err)
	}
	return p
}

func autostartOp(on int32) func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
	return func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
		p := c.lookupPool("base")
		args := []string{"pool-autostart", "base"}
		if on == 0 {
			args = append(args, "--disable")
		}
		return "base", args, func(l *libvirt.Libvirt) error { return l.StoragePoolSetAutostart(p, on) }
	}
}

var crashOps = []crashOp{
	{"pool-define", func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
		name := fmt.Sprintf("def%d", c.n)
		xml := filepath.Join(c.d.Root, name+".xml")
		doc := fmt.Sprintf("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", name, filepath.Join(c.pools, name))
		if err := os.WriteFile(xml, []byte(doc), 0o644); err != nil {
			c.t.Fatal(err)
		}
		return name, []string{"pool-define", xml}, func(l *libvirt.Libvirt) error {
			_, err := l.StoragePoolDefineXML(doc, 0)
			return err
		}
	}},
	{"pool-undefine", func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
		name := fmt.Sprintf("undef%d", c.n)
		c.definePool(name, false)
		p := c.lookupPool(name)
		return name, []string{"pool-undefine", name}, func(l *libvirt.Libvirt) error { return l.StoragePoolUndefine(p) }
	}},
	{"pool-autostart", autostartOp(1)},
	{"pool-autostart-disable", autostartOp(0)},
	{"pool-start", func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
		name := fmt.Sprintf("start%d", c.n)
		c.definePool(name, true)
		p := c.lookupPool(name)
		return name, []string{"pool-start", name}, func(l *libvirt.Libvirt) error { return l.StoragePoolCreate(p, 0) }
	}},
	{"pool-destroy", func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
		name := fmt.Sprintf("stop%d", c.n)
		c.definePool(name, true)
		c.virsh("pool-start", name)
		p := c.lookupPool(name)
		return name, []string{"pool-destroy", name}, func(l *libvirt.Libvirt) error { return l.StoragePoolDestroy(p) }
	}},
	{"vol-delete", func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
		name := fmt.Sprintf("del%d", c.n)
		c.virsh("vol-create-as", "base", name, "16M", "--allocation", "16M", "--format", "raw")
		v, err := c.l.StorageVolLookupByName(c.lookupPool("base"), name)
		if err != nil {
			c.t.Fatal(err)
		}
		return "base", []string{"vol-delete", "--pool", "base", name}, func(l *libvirt.Libvirt) error { return l.StorageVolDelete(v, 0) }
	}},
	{"vol-create", func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
		name := fmt.Sprintf("vol%d", c.n)
		p := c.lookupPool("base")
		xml := fmt.Sprintf("<volume><name>%s</name><capacity unit='MiB'>64</capacity><allocation unit='MiB'>64</allocation><target><format type='raw'/></target></volume>", name)
		return "base", []string{"vol-create-as", "base", name, "64M", "--allocation", "64M", "--format", "raw"},
			func(l *libvirt.Libvirt) error {
				_, err := l.StorageVolCreateXML(p, xml, 0)
				return err
			}
	}},
	{"vol-upload", func(c *crashRun) (string, []string, func(*libvirt.Libvirt) error) {
		name := fmt.Sprintf("up%d", c.n)
		c.virsh("vol-create-as", "base", name, "8M", "--format", "raw")
		data := make([]byte, 8<<20)
		_, _ = rand.Read(data)
		src := filepath.Join(c.d.Root, "upload.bin")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			c.t.Fatal(err)
		}
		v, err := c.l.StorageVolLookupByName(c.lookupPool("base"), name)
		if err != nil {
			c.t.Fatal(err)
		}
		return "base", []string{"vol-upload", "--pool", "base", name, src}, func(l *libvirt.Libvirt) error {
			return l.StorageVolUpload(v, bytes.NewReader(data), 0, uint64(len(data)), 0)
		}
	}},
}

// TestCrashDuringOperations SIGKILLs the daemon at a random moment of an
// operation, sent by virsh or by a connected go-libvirt client, restarts it
// and checks that what it serves agrees with what is on disk: see
// checkAfterCrash.
func TestCrashDuringOperations(t *testing.T) {
	testkit.RequireTool(t, "virsh")
	iters, budget, seed := crashKnobs(t)
	t.Logf("crash harness: %d iterations, budget %s, VS_CRASH_SEED=%d", iters, budget, seed)
	c := &crashRun{t: t, d: testkit.StartDaemon(t, testkit.DaemonOptions{}), rng: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	c.pools = filepath.Join(c.d.Root, "pools")
	c.definePool("base", true)
	c.virsh("pool-start", "base")

	// A kill before virsh even reached the daemon tests nothing: its delays
	// are spread around what one virsh call takes on this machine. The
	// go-libvirt client is connected already, so its delays are short.
	t0 := time.Now()
	c.virsh("pool-list", "--all")
	calib := time.Since(t0)
	began := time.Now()
	counts, cut := map[string]int{}, map[string]int{}
	completed := 0
	// Rounds of every operation in a random order: each gets its share of
	// kills, however few iterations are run.
	var order []int
	for c.n = 0; c.n < iters; c.n++ {
		if time.Since(began) > budget {
			t.Logf("crash harness: budget spent after %d iterations", c.n)
			break
		}
		if len(order) == 0 {
			order = c.rng.Perm(len(crashOps))
		}
		op := crashOps[order[0]]
		order = order[1:]
		counts[op.name]++
		c.connect()
		pool, args, call := op.prepare(c)
		before := c.states()
		viaVirsh := c.rng.IntN(2) == 0
		var delay time.Duration
		done := make(chan bool)
		if viaVirsh {
			delay = calib/2 + time.Duration(c.rng.Int64N(int64(calib)))
			go func() {
				_, _, code := c.d.Virsh(args...)
				done <- code == 0
			}()
		} else {
			// Log-uniform from 20µs to 30ms: most of these operations
			// take a millisecond or two, and a uniform draw would land
			// nearly every kill after the answer.
			delay = time.Duration(float64(20*time.Microsecond) * math.Pow(1500, c.rng.Float64()))
			go func() { done <- call(c.l) == nil }()
		}
		time.Sleep(delay)
		t0 := time.Now()
		c.d.Kill()
		if <-done {
			completed++
		} else {
			cut[op.name]++
		}
		_ = c.l.Disconnect()
		t1 := time.Now()
		c.d.Start(t)
		t2 := time.Now()
		okState := c.checkAfterCrash(op.name, pool, before)
		_ = c.l.Disconnect()
		if os.Getenv("VS_CRASH_TRACE") != "" {
			t.Logf("%s (virsh %v, delay %s): kill+wait %s, restart %s, checks %s", op.name, viaVirsh, delay, t1.Sub(t0), t2.Sub(t1), time.Since(t2))
		}
		if !okState {
			t.Fatalf("iteration %d (%s, virsh %v, killed after %s) left an inconsistent state; replay with VS_CRASH_SEED=%d", c.n, op.name, viaVirsh, delay, seed)
		}
	}
	t.Logf("crash harness: operations run: %v; %d of %d finished before the kill; killed before their answer: %v", counts, completed, c.n, cut)
	// Rounds give every operation iters/len(crashOps) kills when the loop
	// runs to the end; a run cut short by the budget must still reach the
	// floor in each one.
	wantEach := int(minCrashShare * float64(iters/len(crashOps)))
	var short []string
	for _, op := range crashOps {
		if counts[op.name] < wantEach {
			short = append(short, fmt.Sprintf("%s %d", op.name, counts[op.name]))
		}
	}
	if len(short) > 0 {
		t.Errorf("crash harness ran %d of %d iterations in its %s budget: below the minimum of %d kills per operation for %s (all counts: %v)",
			c.n, iters, budget, wantEach, strings.Join(short, ", "), counts)
	}
	if completed == c.n {
		// Every kill came after the answer: the harness tested only restarts.
		t.Errorf("no operation of %d was interrupted by the kill", c.n)
	}
}

// states maps every pool to whether it is active.
func (c *crashRun) states() map[string]bool {
	c.t.Helper()
	st := map[string]bool{}
	for _, n := range c.poolNames(0) {
		st[n] = false
	}
	for _, n := range c.poolNames(libvirt.ConnectListStoragePoolsActive) {
		st[n] = true
	}
	return st
}

// checkAfterCrash checks the restarted daemon against the files: every
// config parses and the pools listed are exactly those with a config; no
// temp file is left; autostart links point at configs and match what the
// daemon reports; a pool is active exactly when it has a status file, and
// every pool the operation did not touch is in its state from before; the
// base pool's volumes are exactly the files in its directory, and a raw
// volume cut short by the kill has the size it was created with.
func (c *crashRun) checkAfterCrash(op, pool string, before map[string]bool) bool {
	t := c.t
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Errorf("after killing %s on %s: "+format, append([]any{op, pool}, args...)...)
		ok = false
	}
	// The daemon listens before it has loaded its state (connections wait
	// in the backlog), so the files are looked at once it answers; virsh
	// itself must work on what the crash left.
	allByVirsh := lines(c.virsh("pool-list", "--all", "--name"))
	c.connect()
	after := c.states()
	storage, status := c.d.StorageDir(), c.d.StatusDir()
	autostart := filepath.Join(storage, "autostart")
	for _, d := range []string{storage, autostart, status} {
		for _, n := range listDir(t, d) {
			if strings.HasSuffix(n, ".tmp") || strings.HasPrefix(n, ".") {
				fail("temp file left: %s", filepath.Join(d, n))
			}
		}
	}
	codec := xmldef.New()
	configs := []string{}
	for _, n := range listDir(t, storage) {
		if !strings.HasSuffix(n, ".xml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(storage, n))
		if err != nil {
			fail("%v", err)
			continue
		}
		def, err := codec.ParsePool(string(b), 0)
		if err != nil {
			fail("config %s does not parse: %v", n, err)
			continue
		}
		if want := strings.TrimSuffix(n, ".xml"); def.Name != want {
			fail("config %s names pool %q", n, def.Name)
		}
		configs = append(configs, strings.TrimSuffix(n, ".xml"))
	}
	if !slices.Equal(allByVirsh, configs) {
		fail("virsh pool-list --all = %v, configs on disk = %v", allByVirsh, configs)
	}
	links := []string{}
	for _, n := range listDir(t, autostart) {
		p := filepath.Join(autostart, n)
		target, err := os.Readlink(p)
		if err != nil {
			fail("autostart entry %s is not a link: %v", n, err)
			continue
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(autostart, target)
		}
		if _, err := os.Stat(target); err != nil || filepath.Clean(target) != filepath.Join(storage, n) {
			fail("autostart link %s -> %s does not point at its config (%v)", n, target, err)
		}
		links = append(links, strings.TrimSuffix(n, ".xml"))
	}
	if got := c.poolNames(libvirt.ConnectListStoragePoolsAutostart); !slices.Equal(got, links) {
		fail("autostart pools = %v, links on disk = %v", got, links)
	}
	active := c.poolNames(libvirt.ConnectListStoragePoolsActive)
	withStatus := []string{}
	for _, n := range listDir(t, status) {
		withStatus = append(withStatus, strings.TrimSuffix(n, ".xml"))
	}
	if !slices.Equal(active, withStatus) {
		fail("active pools = %v, status files = %v", active, withStatus)
	}
	for name, was := range before {
		if name == pool {
			continue
		}
		if now, ok := after[name]; !ok || now != was {
			fail("pool %s: active=%v before the crash, now present=%v active=%v", name, was, ok, now)
		}
	}
	if !after["base"] {
		fail("pool base is not running after the restart")
		return false
	}
	dir := filepath.Join(c.pools, "base")
	files := listDir(t, dir)
	if got := c.volNames("base"); !slices.Equal(got, files) {
		fail("vol-list base = %v, files = %v", got, files)
	}
	if op == "vol-create" {
		name := fmt.Sprintf("vol%d", c.n)
		st, err := os.Stat(filepath.Join(dir, name))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			fail("%v", err)
		case st.Size() != 0 && st.Size() != 64<<20:
			// O_EXCL create, then ftruncate to the capacity: a file cut short
			// is empty or full length, never in between.
			fail("volume %s cut short has size %d", name, st.Size())
		default:
			// A file the kill cut short (not yet fully allocated) is listed as
			// a volume after the restart, as libvirt does: its figures must be
			// the file's.
			p, err := c.l.StoragePoolLookupByName("base")
			if err != nil {
				fail("%v", err)
				break
			}
			v, err := c.l.StorageVolLookupByName(p, name)
			if err != nil {
				fail("volume %s exists on disk but not for the daemon: %v", name, err)
				break
			}
			_, capacity, _, err := c.l.StorageVolGetInfo(v)
			if err != nil || capacity != uint64(st.Size()) {
				fail("volume %s: vol-info capacity %d (%v), file size %d", name, capacity, err, st.Size())
			}
		}
	}
	return ok
}
