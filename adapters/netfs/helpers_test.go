package netfs_test

import (
	"flag"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden .argv files in testdata")

func newMountTable(t testing.TB) *testkit.MountTable { return testkit.NewMountTable(t) }

func checkGolden(t *testing.T, name string, argvs [][]string, repl ...string) {
	t.Helper()
	testkit.CheckGoldenArgv(t, name, argvs, *update, repl...)
}

func wantErrText(t *testing.T, err error, wantKind domain.Kind, want string) {
	t.Helper()
	testkit.WantErrText(t, err, wantKind, want)
}

func newBlockingRunner(t testing.TB, ignoreCtx bool) *testkit.BlockingRunner {
	return testkit.NewBlockingRunner(t, ignoreCtx)
}
