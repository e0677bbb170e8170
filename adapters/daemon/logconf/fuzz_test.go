package logconf_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/logconf"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// Fuzzing measured at most 48 bytes per input byte (ParseFilters on short
// tokens, each a split string, a Filter and its starred pattern) and 6 KB for
// a small input. ParseOutputs turns each relative file path into an absolute
// one: Getwd's two stats and the joined path, 61 bytes per byte for
// "1:file:a" repeated here, more in a deeper working directory, hence the
// per-byte share of its length.
const (
	specAllocPerByte = 128
	specAllocSlack   = 16 << 10
)

func checkSpecAlloc(t *testing.T, what, s string, perByte uint64, parse func()) {
	t.Helper()
	n := testkit.AllocatedBytes(parse)
	if limit := perByte*uint64(len(s)) + specAllocSlack; n > limit {
		t.Fatalf("%s of %d bytes allocated %d, bound %d", what, len(s), n, limit)
	}
}

func FuzzParseOutputs(f *testing.F) {
	for _, s := range []string{
		"3:stderr", "2:journald", "1:syslog:virtstoraged", "1:file:/var/log/libvirt/virtstoraged.log",
		"1:file:/var/log/../log/x.log", "  3:stderr   1:file:/tmp/a ", "3:stderr 1:file:/tmp/a 1:stderr",
		"3", "5:stderr", "+1:stderr", "3:stderr:x", "1:file:", "3:stderr 9:journald",
	} {
		f.Add(s)
	}
	cwd, err := os.Getwd()
	if err != nil {
		f.Fatal(err)
	}
	// The shortest relative output, "1:file:a ", is 9 bytes for two copies
	// of the working directory.
	perByte := specAllocPerByte + uint64(len(cwd))/2
	f.Fuzz(func(t *testing.T, s string) {
		var outs []logconf.Output
		var err error
		checkSpecAlloc(t, "ParseOutputs", s, perByte, func() { outs, err = logconf.ParseOutputs(s) })
		if err != nil {
			return
		}
		// virt-admin shows FormatOutputs and may hand it straight back to
		// daemon-log-outputs: it must mean the same outputs.
		again, err := logconf.ParseOutputs(logconf.FormatOutputs(outs))
		if err != nil || !reflect.DeepEqual(again, outs) {
			t.Fatalf("%q parsed as %+v, formatted as %q, read back as %+v, %v", s, outs, logconf.FormatOutputs(outs), again, err)
		}
	})
}

func FuzzParseFilters(f *testing.F) {
	for _, s := range []string{
		"1:storage 3:rpc", "1:*storage*", "2:+storage.dir", "   ", "storage", "0:rpc", "1:", "1:+",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var filters []logconf.Filter
		var err error
		checkSpecAlloc(t, "ParseFilters", s, specAllocPerByte, func() { filters, err = logconf.ParseFilters(s) })
		if err != nil {
			return
		}
		for _, fl := range filters {
			// The stored pattern is what the user wrote wrapped in '*', so it
			// matches at least the module name that is that text itself.
			inner := strings.TrimSuffix(strings.TrimPrefix(fl.Pattern, "*"), "*")
			if fl.Priority < logconf.PriorityDebug || fl.Priority > logconf.PriorityError ||
				len(fl.Pattern) != len(inner)+2 || !logconf.Match(fl.Pattern, inner) {
				t.Fatalf("%q gave filter %+v", s, fl)
			}
		}
	})
}
