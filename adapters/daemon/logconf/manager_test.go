package logconf_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/logconf"
)

// syncBuffer lets the race detector watch concurrent writers to a buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func logAll(l *logrus.Logger) {
	for _, m := range []string{"rpc", "storage", "storage.dir", ""} {
		e := logrus.NewEntry(l)
		if m != "" {
			e = l.WithField(logconf.ModuleField, m)
		}
		e.Debug("d-" + m)
		e.Info("i-" + m)
		e.Warn("w-" + m)
		e.Error("e-" + m)
	}
}

func TestFiltering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		giveLevel   int
		giveFilters string
		giveOutputs string
		want        []string
	}{
		{
			name:      "level only",
			giveLevel: 3,
			want:      []string{"w-rpc", "e-rpc", "w-storage", "e-storage", "w-storage.dir", "e-storage.dir", "w-", "e-"},
		},
		{
			name:        "filter raises verbosity of a module and its children",
			giveLevel:   4,
			giveFilters: "1:storage",
			giveOutputs: "1:stderr",
			want:        []string{"e-rpc", "d-storage", "i-storage", "w-storage", "e-storage", "d-storage.dir", "i-storage.dir", "w-storage.dir", "e-storage.dir", "e-"},
		},
		{
			name:        "first matching filter wins",
			giveLevel:   4,
			giveFilters: "2:storage.dir 1:storage",
			giveOutputs: "1:stderr",
			want:        []string{"e-rpc", "d-storage", "i-storage", "w-storage", "e-storage", "i-storage.dir", "w-storage.dir", "e-storage.dir", "e-"},
		},
		{
			name:        "catch-all last",
			giveLevel:   4,
			giveFilters: "3:rpc 1:*",
			giveOutputs: "1:stderr",
			want:        []string{"w-rpc", "e-rpc", "d-storage", "i-storage", "w-storage", "e-storage", "d-storage.dir", "i-storage.dir", "w-storage.dir", "e-storage.dir", "d-", "i-", "w-", "e-"},
		},
		{
			name:        "output level cuts after filters",
			giveLevel:   1,
			giveOutputs: "3:stderr",
			want:        []string{"w-rpc", "e-rpc", "w-storage", "e-storage", "w-storage.dir", "e-storage.dir", "w-", "e-"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			l := logrus.New()
			m, err := logconf.New(l, logconf.Options{Level: tt.giveLevel, Filters: tt.giveFilters, Outputs: tt.giveOutputs, Stderr: &buf})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			logAll(l)
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				f := strings.Fields(line)
				if len(f) > 0 {
					got = append(got, f[len(f)-1])
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("logged %q\nwant   %q\nfull output:\n%s", got, tt.want, buf.String())
			}
		})
	}
}

func TestLineFormat(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	l := logrus.New()
	m, err := logconf.New(l, logconf.Options{Level: 2, Stderr: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l.WithFields(logrus.Fields{logconf.ModuleField: "storage.dir", "pool": "default", "argv": "qemu-img create"}).Info("volume created")
	line := buf.String()
	wantSuffix := ": info : storage.dir : volume created argv=\"qemu-img create\" pool=default\n"
	if !strings.HasSuffix(line, wantSuffix) {
		t.Fatalf("line %q does not end with %q", line, wantSuffix)
	}
	if !strings.Contains(line, ": "+strconv.Itoa(os.Getpid())+": ") {
		t.Fatalf("line %q lacks the pid", line)
	}
}

func TestRuntimeChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var buf syncBuffer
	l := logrus.New()
	m, err := logconf.New(l, logconf.Options{Level: 3, Stderr: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	if got := m.Outputs(); got != "3:stderr" {
		t.Fatalf("default Outputs() = %q", got)
	}
	if got := m.Filters(); got != "" {
		t.Fatalf("default Filters() = %q", got)
	}
	if l.IsLevelEnabled(logrus.InfoLevel) {
		t.Fatal("logger lets info through at level 3 with no filter")
	}

	if err := m.SetFilters("1:rpc"); err != nil {
		t.Fatal(err)
	}
	if got := m.Filters(); got != "1:*rpc* " {
		t.Fatalf("Filters() = %q", got)
	}
	// A debug filter only helps if some output takes debug.
	if l.IsLevelEnabled(logrus.DebugLevel) {
		t.Fatal("debug enabled while the only output is at 3")
	}
	logPath := filepath.Join(dir, "d.log")
	if err := m.SetOutputs("1:file:" + logPath + " 3:stderr"); err != nil {
		t.Fatal(err)
	}
	if got := m.Outputs(); got != "1:file:"+logPath+" 3:stderr" {
		t.Fatalf("Outputs() = %q", got)
	}
	if !l.IsLevelEnabled(logrus.DebugLevel) {
		t.Fatal("debug not enabled with a debug filter and a debug output")
	}
	l.WithField(logconf.ModuleField, "rpc").Debug("first")
	l.WithField(logconf.ModuleField, "storage").Debug("dropped")

	if err := m.SetOutputs("9:bogus"); err == nil {
		t.Fatal("SetOutputs accepted a bad string")
	}
	if got := m.Outputs(); got != "1:file:"+logPath+" 3:stderr" {
		t.Fatalf("a failed SetOutputs changed the outputs to %q", got)
	}

	// Rotate: the file is moved away, Reopen starts a new one.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.WithField(logconf.ModuleField, "rpc").Debug("second")

	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	if !strings.Contains(string(old), "first") || strings.Contains(string(old), "dropped") || strings.Contains(string(old), "second") {
		t.Fatalf("rotated file holds %q", old)
	}
	if !strings.Contains(string(cur), "debug : rpc : second") {
		t.Fatalf("reopened file holds %q", cur)
	}
	if st, err := os.Stat(logPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("log file mode %v, %v; want 0600", st.Mode(), err)
	}

	if err := m.SetOutputs(""); err != nil {
		t.Fatal(err)
	}
	if got := m.Outputs(); got != "3:stderr" {
		t.Fatalf("empty SetOutputs gave %q, want the default", got)
	}
	if err := m.SetFilters(""); err != nil || m.Filters() != "" {
		t.Fatalf("clearing filters: %v, %q", err, m.Filters())
	}
	if err := m.SetLevel(1); err != nil || m.Level() != 1 {
		t.Fatalf("SetLevel: %v, %d", err, m.Level())
	}
	if err := m.SetLevel(0); err == nil {
		t.Fatal("SetLevel(0) accepted")
	}
}

func TestDefaultOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	journalSock := filepath.Join(dir, "journal.sock")
	pc, err := net.ListenPacket("unixgram", journalSock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	logFile := filepath.Join(dir, "var/log/libvirt/virtstoraged.log")
	tests := []struct {
		name string
		give logconf.Options
		want string
	}{
		{"foreground", logconf.Options{Level: 2}, "2:stderr"},
		{"foreground verbose", logconf.Options{Level: 3, Verbose: true}, "1:stderr"},
		{"daemon with journal", logconf.Options{Level: 3, Daemon: true, JournalSocket: journalSock}, "3:journald"},
		{"daemon with journal keeps debug out", logconf.Options{Level: 1, Daemon: true, JournalSocket: journalSock}, "2:journald"},
		{"daemon without journal", logconf.Options{Level: 3, Daemon: true, JournalSocket: filepath.Join(dir, "none"), DefaultLogFile: logFile}, "3:file:" + logFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.Stderr = &syncBuffer{}
			m, err := logconf.New(logrus.New(), tt.give)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got := m.Outputs(); got != tt.want {
				t.Fatalf("Outputs() = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := os.Stat(logFile); err != nil {
		t.Fatalf("default log file not created: %v", err)
	}
}

func TestJournaldFallsBackToStderr(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(logconf.DefaultJournalSocket); err == nil {
		t.Skip("this host has a journal; the fallback is not exercised")
	}
	var buf syncBuffer
	l := logrus.New()
	m, err := logconf.New(l, logconf.Options{Level: 3, Outputs: "3:journald", Stderr: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l.Error("no journal here")
	if !strings.Contains(buf.String(), "error : no journal here") {
		t.Fatalf("stderr got %q", buf.String())
	}
	if m.Outputs() != "3:journald" {
		t.Fatalf("Outputs() = %q, want the configured journald", m.Outputs())
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.log")
	l := logrus.New()
	closer, err := logconf.Apply(l, 2, "4:rpc", "2:file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	l.WithField(logconf.ModuleField, "rpc").Warn("hidden")
	l.WithField(logconf.ModuleField, "storage").Info("shown")
	closer()
	l.Error("after close")
	got, _ := os.ReadFile(path)
	if strings.Contains(string(got), "hidden") || !strings.Contains(string(got), "shown") || strings.Contains(string(got), "after close") {
		t.Fatalf("file holds %q", got)
	}
	if _, err := logconf.Apply(logrus.New(), 3, "x", ""); err == nil {
		t.Fatal("Apply accepted a bad filter")
	}
}

func TestConcurrentLoggingAndChanges(t *testing.T) {
	t.Parallel()
	l := logrus.New()
	m, err := logconf.New(l, logconf.Options{Level: 1, Stderr: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				l.WithField(logconf.ModuleField, "rpc").Info("x")
			}
		}()
	}
	for j := 0; j < 50; j++ {
		if err := m.SetFilters("1:rpc 3:storage"); err != nil {
			t.Error(err)
		}
		if err := m.SetOutputs("2:stderr"); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}
