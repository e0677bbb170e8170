package e2e_test

import (
	"os"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.CleanupBuild()
	os.Exit(code)
}
