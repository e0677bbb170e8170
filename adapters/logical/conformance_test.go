package logical_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
)

// TestConformance runs the backends' conformance suite over LVM without device-mapper over loop devices (root only).
func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, harness.Logical(harness.HostLVM))
}
