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
