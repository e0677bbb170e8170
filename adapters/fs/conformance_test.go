package fs_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
)

// TestConformance runs the backends' conformance suite over ext4 on 64 MiB loop devices (root only).
func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, harness.FS(harness.LoopDevices(64<<20)))
}
