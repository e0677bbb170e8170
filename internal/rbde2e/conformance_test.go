package rbde2e_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
)

// TestConformance runs the backends' conformance suite against the rbd
// backend on the package's cluster, each test in a Ceph pool of its own, as
// client.libvirt with cephx.
func TestConformance(t *testing.T) {
	needLab(t)
	backendtest.RunConformanceTests(t, harness.RBD(lab, "libvirt", libvirtKey))
}
