package testkit

import (
	"os"

	"github.com/sirupsen/logrus"
)

// QuietLog is a logger for adapters under test: errors only, on stderr. The
// failures and rollbacks the tests provoke log warnings by design, which
// would drown the output of a failing test.
func QuietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.ErrorLevel)
	return logrus.NewEntry(l)
}
