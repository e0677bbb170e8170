package rbde2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/cephlab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// lab is the package's cluster; nil when it could not start (labErr says
// why, and every test skips or, under CI, fails with it).
var (
	lab    *cephlab.Cluster
	labErr error
	// libvirtKey is client.libvirt's cephx key (base64), the one every pool
	// of the tests uses through libvirt's secret driver.
	libvirtKey string
)

// TestMain starts one cluster for every test of the package: it takes 10-25
// s to come up, which the tests then share (each in images or pools of its
// own). The cluster requires cephx of every client, and client.libvirt is
// the user the pools connect as. It is stopped, by the pids it started,
// whatever the tests did.
func TestMain(m *testing.M) {
	path := os.Getenv("PATH")
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	os.Setenv("PATH", path)
	code := func() int {
		switch {
		case os.Geteuid() != 0:
			labErr = fmt.Errorf("rbde2e: needs root (a Ceph cluster and libvirtd)")
		case !cephlab.Available():
			labErr = cephlab.ErrUnavailable
		default:
			dir, err := os.MkdirTemp("", "cephlab")
			if err != nil {
				labErr = err
				break
			}
			defer os.RemoveAll(dir)
			lab, labErr = cephlab.Start(context.Background(), cephlab.Options{Dir: dir})
			if labErr == nil {
				if libvirtKey, labErr = lab.AddClient(context.Background(), "libvirt"); labErr != nil {
					lab.Stop()
					lab = nil
				}
			}
			if labErr != nil {
				if b, err := os.ReadFile(filepath.Join(dir, "log", "mon.a.log")); err == nil {
					fmt.Fprintf(os.Stderr, "mon.a.log tail:\n%s\n", tailText(string(b), 4000))
				}
			} else {
				defer lab.Stop()
			}
		}
		return m.Run()
	}()
	testkit.CleanupBuild()
	os.Exit(code)
}

func tailText(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// needLab skips (fails under CI) without the cluster.
func needLab(t *testing.T) *cephlab.Cluster {
	t.Helper()
	if lab == nil {
		testkit.SkipOrFailInCI(t, labErr.Error())
	}
	return lab
}
