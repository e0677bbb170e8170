package dir_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
)

// TestConformance runs the backends' conformance suite over a temporary directory (a tmpfs of its own as root).
func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, harness.Dir())
}
