package reliability_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestMain removes what the tests built: the daemon (when no prebuilt one was
// given) and the load generator.
func TestMain(m *testing.M) {
	code := m.Run()
	testkit.CleanupBuild()
	if loadgenPath != "" && os.Getenv(envLoadgen) == "" {
		_ = os.RemoveAll(filepath.Dir(loadgenPath))
	}
	os.Exit(code)
}
