// Package cephlab starts a throw-away single-node Ceph cluster for the rbd
// tests: one monitor, one manager and one memstore OSD, all on 127.0.0.1 on
// free ports, under a directory of the caller's, with no ceph.conf of the
// host and no systemd. Each daemon runs in the foreground as a child of the
// test process; Stop ends exactly those children, by the pids it started.
//
// The cluster takes 10-25 s to come up (the manager, needed for pool
// statistics, is the slow part), so a test package starts one in TestMain
// and its tests share it, each in pools or images of its own.
package cephlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Packages are the Debian packages a cluster needs (the Makefile's DEB_PKGS
// has them).
var Packages = []string{"ceph-mon", "ceph-mgr", "ceph-osd", "ceph-common"}

// Options shape a cluster.
type Options struct {
	// Dir holds everything (configuration, keys, data, logs); it must exist.
	Dir string
	// AllowNoAuth lets clients in without cephx as well (auth_supported =
	// none, as an rbd pool without <auth> connects); cephx is always on.
	AllowNoAuth bool
	// Pool is the rbd pool made at start ("rbd" when empty).
	Pool string
	// Timeout bounds the start (2 minutes when 0).
	Timeout time.Duration
}

// Cluster is a running cluster.
type Cluster struct {
	Dir  string
	Conf string
	// Mon is the monitor's address, HOST:PORT (msgr2), as a pool's <host>
	// gives it.
	MonHost string
	MonPort int
	// AdminKey is client.admin's key, base64 as a keyring holds it.
	AdminKey string
	Pool     string

	mu    sync.Mutex
	procs map[string]*proc
	osdID string
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Available reports whether the Ceph daemons are installed.
func Available() bool {
	for _, c := range []string{"ceph-mon", "ceph-mgr", "ceph-osd", "ceph", "rbd", "rados", "ceph-authtool", "monmaptool"} {
		if _, err := exec.LookPath(c); err != nil {
			return false
		}
	}
	return true
}

// freePort asks the kernel for a port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start makes a new cluster in opts.Dir and waits until it serves rbd.
// On failure it stops whatever it started.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Pool == "" {
		opts.Pool = "rbd"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	c := &Cluster{Dir: opts.Dir, Conf: filepath.Join(opts.Dir, "ceph.conf"), Pool: opts.Pool, procs: map[string]*proc{}}
	defer func() {
		if err != nil {
			c.Stop()
			err = fmt.Errorf("%w (logs in %s)", err, filepath.Join(opts.Dir, "log"))
		}
	}()
	if c.MonPort, err = freePort(); err != nil {
		return nil, err
	}
	c.MonHost = "127.0.0.1:" + strconv.Itoa(c.MonPort)
	// The manager and the OSD bind ports of a range; a random window of the
	// dynamic range keeps two clusters (two test packages) apart.
	lo := 40000 + rand.IntN(19000)
	for _, d := range []string{"data/mon.a", "data/mgr.x", "run", "log"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	fsid, err := os.ReadFile("/proc/sys/kernel/random/uuid")
	if err != nil {
		return nil, err
	}
	service := "cephx"
	if opts.AllowNoAuth {
		service = "cephx, none"
	}
	conf := fmt.Sprintf(confTemplate, strings.TrimSpace(string(fsid)), c.MonHost, lo, lo+199, service, opts.Dir)
	if err := os.WriteFile(c.Conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	d := opts.Dir
	adminKeyring := filepath.Join(d, "ceph.client.admin.keyring")
	monKeyring := filepath.Join(d, "mon.keyring")
	mgrKeyring := filepath.Join(d, "data/mgr.x/keyring")
	steps := [][]string{
		{"ceph-authtool", "--create-keyring", monKeyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"},
		{"ceph-authtool", "--create-keyring", adminKeyring, "--gen-key", "-n", "client.admin",
			"--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mds", "allow *", "--cap", "mgr", "allow *"},
		{"ceph-authtool", "--create-keyring", mgrKeyring, "--gen-key", "-n", "mgr.x",
			"--cap", "mon", "allow profile mgr", "--cap", "osd", "allow *", "--cap", "mds", "allow *"},
		{"ceph-authtool", monKeyring, "--import-keyring", adminKeyring},
		{"ceph-authtool", monKeyring, "--import-keyring", mgrKeyring},
		{"monmaptool", "--create", "--fsid", strings.TrimSpace(string(fsid)), "--addv", "a", "[v2:" + c.MonHost + "]", filepath.Join(d, "monmap")},
		{"ceph-mon", "-c", c.Conf, "--mkfs", "-i", "a", "--monmap", filepath.Join(d, "monmap"), "--keyring", monKeyring},
	}
	for _, s := range steps {
		if _, err := run(ctx, s...); err != nil {
			return nil, err
		}
	}
	if c.AdminKey, err = keyOf(adminKeyring); err != nil {
		return nil, err
	}
	if err := c.launch("mon.a", "ceph-mon", "-i", "a"); err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, "the monitor", func() bool { _, err := c.Ceph(ctx, "mon", "stat"); return err == nil }); err != nil {
		return nil, err
	}
	if err := c.launch("mgr.x", "ceph-mgr", "-i", "x"); err != nil {
		return nil, err
	}
	if _, err := c.Ceph(ctx, "osd", "pool", "create", c.Pool, "8", "8"); err != nil {
		return nil, err
	}
	if err := c.makeOSD(ctx); err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, "the OSD", c.osdUp(ctx)); err != nil {
		return nil, err
	}
	if _, err := run(ctx, "rbd", "-c", c.Conf, "pool", "init", c.Pool); err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, "the manager", func() bool {
		out, err := c.Ceph(ctx, "mgr", "stat", "-f", "json")
		return err == nil && bytes.Contains(bytes.ReplaceAll(out, []byte(" "), nil), []byte(`"available":true`))
	}); err != nil {
		return nil, err
	}
	// Pool statistics come from the manager once it has the OSD's report.
	if err := c.waitFor(ctx, "pool statistics", func() bool {
		out, err := run(ctx, "rados", "-c", c.Conf, "df", "-p", c.Pool, "--format", "json")
		return err == nil && bytes.Contains(out, []byte(`"total_space":`)) && !bytes.Contains(out, []byte(`"total_space":0`))
	}); err != nil {
		return nil, err
	}
	return c, nil
}

const confTemplate = `[global]
fsid = %s
mon host = [v2:%s]
public addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind port min = %d
ms bind port max = %d
auth cluster required = cephx
auth service required = %s
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = %[6]s/run
log file = %[6]s/log/$name.log
keyring = %[6]s/$cluster.$name.keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
mgr initial modules = iostat
[mon]
mon data = %[6]s/data/mon.$id
admin socket = %[6]s/run/$name.asok
mon memory target = 268435456
[mgr]
mgr data = %[6]s/data/mgr.$id
keyring = %[6]s/data/mgr.$id/keyring
admin socket = %[6]s/run/$name.asok
[osd]
osd data = %[6]s/data/osd.$id
keyring = %[6]s/data/osd.$id/keyring
admin socket = %[6]s/run/$name.asok
osd objectstore = memstore
osd memory target = 939524096
osd memory base = 268435456
osd memory cache min = 67108864
osd op num shards = 2
osd op num threads per shard = 1
osd scrub begin hour = 0
osd scrub end hour = 0
memstore device bytes = 2147483648
`

func keyOf(keyring string) (string, error) {
	b, err := os.ReadFile(keyring)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(l), "key = "); ok {
			return k, nil
		}
	}
	return "", fmt.Errorf("cephlab: no key in %s", keyring)
}

func run(ctx context.Context, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("cephlab: %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Ceph runs the ceph command as client.admin.
func (c *Cluster) Ceph(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, append([]string{"ceph", "-c", c.Conf, "--connect-timeout", "10"}, args...)...)
}

// AddClient makes the cephx user client.NAME with the rbd profile's caps
// (what `rbd` and `rados df` need, as a cloud's libvirt user gets them) on
// the pools named, or on every pool when none is, and returns its key as a
// keyring holds it (base64). The key goes through stdout only.
func (c *Cluster) AddClient(ctx context.Context, name string, pools ...string) (string, error) {
	osd := "profile rbd"
	if len(pools) > 0 {
		caps := make([]string, len(pools))
		for i, p := range pools {
			caps[i] = "profile rbd pool=" + p
		}
		osd = strings.Join(caps, ", ")
	}
	out, err := c.Ceph(ctx, "auth", "get-or-create-key", "client."+name,
		"mon", "profile rbd", "osd", osd, "mgr", "profile rbd")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// Rbd runs the rbd command as client.admin, behind the daemon's back.
func (c *Cluster) Rbd(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, append([]string{"rbd", "-c", c.Conf}, args...)...)
}

func (c *Cluster) makeOSD(ctx context.Context) error {
	uuid, err := os.ReadFile("/proc/sys/kernel/random/uuid")
	if err != nil {
		return err
	}
	u := strings.TrimSpace(string(uuid))
	key, err := run(ctx, "ceph-authtool", "--gen-print-key")
	if err != nil {
		return err
	}
	k := strings.TrimSpace(string(key))
	cmd := exec.CommandContext(ctx, "ceph", "-c", c.Conf, "osd", "new", u, "-i", "-")
	cmd.Stdin = strings.NewReader(`{"cephx_secret": "` + k + `"}`)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("cephlab: ceph osd new: %w", err)
	}
	c.osdID = strings.TrimSpace(string(out))
	dir := filepath.Join(c.Dir, "data", "osd."+c.osdID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if _, err := run(ctx, "ceph-authtool", "--create-keyring", filepath.Join(dir, "keyring"), "--name", "osd."+c.osdID, "--add-key", k); err != nil {
		return err
	}
	if _, err := run(ctx, "ceph-osd", "-c", c.Conf, "-i", c.osdID, "--mkfs", "--osd-uuid", u); err != nil {
		return err
	}
	return c.StartOSD()
}

func (c *Cluster) osdUp(ctx context.Context) func() bool {
	return func() bool {
		out, err := c.Ceph(ctx, "osd", "stat", "-f", "json")
		return err == nil && bytes.Contains(out, []byte(`"num_up_osds":1`))
	}
}

// waitFor polls cond every 250 ms until it holds or ctx ends.
func (c *Cluster) waitFor(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cephlab: timed out waiting for %s", what)
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// launch starts a daemon in the foreground, its output in the log dir.
func (c *Cluster) launch(name string, argv ...string) error {
	logf, err := os.OpenFile(filepath.Join(c.Dir, "log", name+".stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], append(append([]string{"-c", c.Conf}, argv[1:]...), "-f")...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies (a panic, a timeout) takes its
	// cluster with it instead of leaving daemons behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	return nil
}

// stop ends one daemon: SIGTERM, then SIGKILL after 10 s (an OSD waits up
// to 5 s for the monitor to mark it down).
func (c *Cluster) stop(name string) {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// StopOSD stops the OSD (a fault: I/O then waits, and times out).
func (c *Cluster) StopOSD() { c.stop("osd." + c.osdID) }

// StartOSD starts the OSD again.
func (c *Cluster) StartOSD() error { return c.launch("osd."+c.osdID, "ceph-osd", "-i", c.osdID) }

// WaitOSDUp waits until the monitor sees the OSD up again.
func (c *Cluster) WaitOSDUp(ctx context.Context) error {
	return c.waitFor(ctx, "the OSD", c.osdUp(ctx))
}

// PauseOSD freezes the OSD (SIGSTOP): a hung OSD, which neither answers nor
// closes its connections; its data stays, unlike a memstore OSD stopped.
func (c *Cluster) PauseOSD() { c.signal("osd."+c.osdID, syscall.SIGSTOP) }

// ResumeOSD lets a paused OSD run again.
func (c *Cluster) ResumeOSD() { c.signal("osd."+c.osdID, syscall.SIGCONT) }

func (c *Cluster) signal(name string, sig syscall.Signal) {
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	if p != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// WaitHealthy waits until every placement group is active and clean again
// (after a fault), so that the next test finds a working cluster.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.waitFor(ctx, "active+clean placement groups", func() bool {
		out, err := c.Ceph(ctx, "pg", "stat")
		s := string(out)
		return err == nil && strings.Contains(s, "active+clean") &&
			!strings.Contains(s, "stale") && !strings.Contains(s, "peering") && !strings.Contains(s, "down") && !strings.Contains(s, "unknown")
	})
}

// StopMon stops the monitor (a fault: nothing can connect).
func (c *Cluster) StopMon() { c.stop("mon.a") }

// StartMon starts the monitor again.
func (c *Cluster) StartMon() error { return c.launch("mon.a", "ceph-mon", "-i", "a") }

// Stop ends every daemon the cluster started, OSD first; it is safe to
// call more than once.
func (c *Cluster) Stop() {
	c.ResumeOSD() // a paused OSD would not hear SIGTERM
	c.StopOSD()
	c.stop("mgr.x")
	c.StopMon()
}

// Pids lists the pids of the running daemons.
func (c *Cluster) Pids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// ErrUnavailable says the Ceph packages are missing.
var ErrUnavailable = errors.New("cephlab: the Ceph daemons are not installed (Debian: " + strings.Join(Packages, " ") + ")")
