package netfs_test

import (
	"flag"
	"os"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden .argv files in testdata")

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.ErrorLevel) // the expected warnings (tainted mount options, failed showmount) would drown the output
	return logrus.NewEntry(l)
}

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
