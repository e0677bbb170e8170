package testkit_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
)

// TestConformance runs the backends' conformance suite over the in-memory fake, whose pools hold 1 GiB.
func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, harness.Memory(1<<30))
}
