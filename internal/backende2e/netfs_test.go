package backende2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// netfsStartBound is how long a failing netfs pool-start may take: the
// daemon bounds each mount at 30 s, so an NFS client that keeps retrying a
// dead server still gives an error well within it.
const netfsStartBound = 40 * time.Second

// TestNetFSPoolWithoutServer starts netfs pools whose server does not exist.
// Only loopback addresses are used: no traffic may leave this machine, and
// nothing serves NFS on it, so the mount fails (or times out) and the pool
// must stay inactive and unmounted.
func TestNetFSPoolWithoutServer(t *testing.T) {
	requireRoot(t)
	requireTools(t, "virsh", "mount")
	d := startDaemon(t, testkit.DaemonOptions{})
	tests := []struct {
		name       string
		giveHost   string
		giveFormat string
	}{
		{name: "auto", giveHost: "127.0.0.1"},
		{name: "nfs", giveHost: "localhost", giveFormat: "nfs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := "np" + tc.name
			target := filepath.Join(d.Root, "nfs-"+tc.name)
			t.Cleanup(func() {
				if _, ok := mountOn(t, target); ok {
					_, _ = run("umount", "-l", target)
				}
			})
			args := []string{"pool-define-as", pool, "netfs", "--source-host", tc.giveHost, "--source-path", "/export", "--target", target}
			if tc.giveFormat != "" {
				args = append(args, "--source-format", tc.giveFormat)
			}
			virshOK(t, d, args...)
			// There is no device to format on a network filesystem.
			virshErr(t, d, []string{"error: Requested operation is not valid: No source device specified when formatting pool '" + pool + "'"}, "pool-build", pool, "--overwrite")
			virshOK(t, d, "pool-build", pool)
			if st, err := os.Stat(target); err != nil || !st.IsDir() {
				t.Fatalf("pool-build did not create %s: %v", target, err)
			}

			start := time.Now()
			errOut := virshErr(t, d, []string{
				"error: Failed to start pool " + pool,
				tc.giveHost + ":/export",
			}, "pool-start", pool)
			if took := time.Since(start); took > netfsStartBound {
				t.Errorf("pool-start %s took %s, want under %s", pool, took, netfsStartBound)
			}
			t.Logf("pool-start %s: %s", pool, strings.TrimSpace(errOut))
			if got := poolState(t, d, pool); got != "inactive" {
				t.Errorf("after a failed pool-start, State %q, want inactive", got)
			}
			if m, ok := mountOn(t, target); ok {
				t.Errorf("a failed pool-start left %+v mounted", m)
			}
			virshErr(t, d, []string{"error: Requested operation is not valid: storage pool '" + pool + "' is not active"}, "vol-list", pool)

			virshOK(t, d, "pool-delete", pool)
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("pool-delete left %s: %v", target, err)
			}
			virshOK(t, d, "pool-undefine", pool)
		})
	}
}

// TestNetFSFindSources asks for the exports of a host that serves none; it
// needs no root, showmount only asks.
func TestNetFSFindSources(t *testing.T) {
	d := startDaemon(t, testkit.DaemonOptions{})
	tests := []struct {
		name      string
		giveArgs  []string
		wantOneOf []string
	}{
		{
			name:     "loopback has no exports",
			giveArgs: []string{"--host", "127.0.0.1"},
			wantOneOf: []string{
				"error: operation failed: no storage pools were found on host '127.0.0.1'",
				// When showmount hangs instead of being refused.
				"error: operation failed: cannot list the NFS exports of 127.0.0.1: timed out",
			},
		},
		{
			name:      "no host",
			wantOneOf: []string{"error: invalid argument: hostname must be specified for netfs sources"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"find-storage-pool-sources-as", "netfs"}, tc.giveArgs...)
			start := time.Now()
			errOut := virshErr(t, d, []string{"error: Failed to find any netfs pool sources"}, args...)
			if took := time.Since(start); took > netfsStartBound {
				t.Errorf("find-storage-pool-sources-as took %s, want under %s", took, netfsStartBound)
			}
			matched := false
			for _, w := range tc.wantOneOf {
				matched = matched || strings.Contains(errOut, w)
			}
			if !matched {
				t.Errorf("virsh %s: stderr %q holds none of %q", strings.Join(args, " "), errOut, tc.wantOneOf)
			}
		})
	}
}

// The daemon's bounds (fsmount.DefaultTimeout, netfs.DefaultShowmountTimeout):
// no configuration setting changes them, so this test waits for the real
// ones.
const (
	mountBound     = 30 * time.Second
	showmountBound = 15 * time.Second
	// boundSlack covers RunBounded's reap grace (2 s), virsh and a loaded
	// machine.
	boundSlack = 10 * time.Second
)

// blackhole routes one TEST-NET-2 address to the loopback device and
// returns it. A packet looped back to an address that is not local is dropped
// on input while IP forwarding is off: connections to it hang, as to a server
// that drops packets, and nothing leaves this machine.
func blackhole(t *testing.T) string {
	t.Helper()
	requireTools(t, "ip")
	if fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(fwd)) != "0" {
		t.Skipf("backende2e: IP forwarding is on (%q, %v): a loopback route would forward, not drop: skipping", fwd, err)
	}
	const addr = "198.51.100.77"
	if out, err := run("ip", "route", "add", addr+"/32", "dev", "lo"); err != nil {
		t.Fatalf("ip route add %s/32 dev lo: %v: %s", addr, err, out)
	}
	t.Cleanup(func() {
		if out, err := run("ip", "route", "del", addr+"/32", "dev", "lo"); err != nil {
			t.Errorf("ip route del %s/32 dev lo: %v: %s", addr, err, out)
		}
	})
	return addr
}

// processesNaming lists the processes whose command line holds every word.
func processesNaming(t *testing.T, words ...string) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		all := true
		for _, w := range words {
			all = all && strings.Contains(cmd, w)
		}
		if all {
			found = append(found, cmd)
		}
	}
	return found
}

// noneLeft fails unless no process naming the words remains (the kill of a
// process group takes a moment to be reaped).
func noneLeft(t *testing.T, words ...string) {
	t.Helper()
	var left []string
	for i := 0; i < 30; i++ {
		if left = processesNaming(t, words...); len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("processes left behind: %q", left)
}

// TestNetFSServerDropsPackets starts an NFS pool and lists the exports of a
// server that drops every packet. mount.nfs (NFSv3 without locking, whose
// server probe runs in user space; this kernel may lack NFS, which fails a v4
// mount at once) and
// showmount then hang: the daemon's bounds must kill them and answer with a
// timeout, within the bound plus slack, leaving no process behind.
func TestNetFSServerDropsPackets(t *testing.T) {
	requireRoot(t)
	requireTools(t, "virsh", "mount.nfs", "showmount")
	addr := blackhole(t)
	d := startDaemon(t, testkit.DaemonOptions{})

	t.Run("pool-start", func(t *testing.T) {
		t.Parallel()
		target := filepath.Join(d.Root, "nfs-drop")
		t.Cleanup(func() {
			if _, ok := mountOn(t, target); ok {
				_, _ = run("umount", "-l", target)
			}
		})
		// nolock: without it mount.nfs first needs rpc.statd, and on a host
		// where statd is not running it fails on that (after trying to start
		// it) instead of probing the server, so the bound would go untested.
		poolXML := `<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'>
  <name>npdrop</name>
  <source><host name='` + addr + `'/><dir path='/export'/><format type='nfs'/><protocol ver='3'/></source>
  <target><path>` + target + `</path></target>
  <fs:mount_opts><fs:option name='nolock'/></fs:mount_opts>
</pool>`
		xmlPath := filepath.Join(t.TempDir(), "npdrop.xml")
		if err := os.WriteFile(xmlPath, []byte(poolXML), 0o644); err != nil {
			t.Fatal(err)
		}
		virshOK(t, d, "pool-define", xmlPath)
		virshOK(t, d, "pool-build", "npdrop")
		start := time.Now()
		virshErr(t, d, []string{
			"error: Failed to start pool npdrop",
			"error: operation failed: cannot mount " + addr + ":/export on " + target + ": timed out after " + mountBound.String(),
		}, "pool-start", "npdrop")
		if took := time.Since(start); took < mountBound || took > mountBound+boundSlack {
			t.Errorf("pool-start took %s, want the %s bound (at most %s more)", took, mountBound, boundSlack)
		}
		noneLeft(t, "mount", addr+":/export")
		if got := poolState(t, d, "npdrop"); got != "inactive" {
			t.Errorf("after a timed-out pool-start, State %q, want inactive", got)
		}
		if m, ok := mountOn(t, target); ok {
			t.Errorf("a timed-out pool-start left %+v mounted", m)
		}
		virshOK(t, d, "pool-delete", "npdrop")
		virshOK(t, d, "pool-undefine", "npdrop")
	})
	t.Run("find-storage-pool-sources", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		virshErr(t, d, []string{
			"error: Failed to find any netfs pool sources",
			"error: operation failed: cannot list the NFS exports of " + addr + ": timed out after " + showmountBound.String(),
		}, "find-storage-pool-sources-as", "netfs", "--host", addr)
		if took := time.Since(start); took < showmountBound || took > showmountBound+boundSlack {
			t.Errorf("find-storage-pool-sources-as took %s, want the %s bound (at most %s more)", took, showmountBound, boundSlack)
		}
		noneLeft(t, "showmount", addr)
	})
}
