package disk_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
)

func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, harness.Disk(harness.PartitionedLoopDevices(64<<20)))
}
