package faults_test

import (
	"os"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestMain removes the daemon binary that the crash and disk-full tests build.
func TestMain(m *testing.M) {
	code := m.Run()
	testkit.CleanupBuild()
	os.Exit(code)
}
