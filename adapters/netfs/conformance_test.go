package netfs_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
)

// TestConformance runs the backends' conformance suite over scripted mounts in a fake mount table.
func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, harness.NetFS(harness.FakeNFS))
}
