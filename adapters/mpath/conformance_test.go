package mpath_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
)

// TestConformance runs the backends' conformance suite over a fake sysfs.
func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, harness.Mpath(harness.FakeMultipath))
}
