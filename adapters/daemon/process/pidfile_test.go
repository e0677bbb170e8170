package process_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/process"
)

func TestAcquirePidFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "run", "virtstoraged.pid")
	release, err := process.AcquirePidFile(path)
	if err != nil {
		t.Fatalf("AcquirePidFile() error = %v", err)
	}
	pid, err := process.ReadPidFile(path)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("ReadPidFile() = %d, %v; want %d", pid, err, os.Getpid())
	}

	// flock locks belong to the open file description, so a second open in
	// this same process stands in for a second daemon.
	_, err = process.AcquirePidFile(path)
	if !errors.Is(err, process.ErrPidFileLocked) {
		t.Fatalf("second AcquirePidFile() error = %v, want ErrPidFileLocked", err)
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the holder's pid and the path", err)
	}
	if pid, _ := process.ReadPidFile(path); pid != os.Getpid() {
		t.Fatalf("failed acquire changed the pid file to %d", pid)
	}

	release()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pid file still there after release: %v", err)
	}
	release2, err := process.AcquirePidFile(path)
	if err != nil {
		t.Fatalf("AcquirePidFile() after release error = %v", err)
	}
	release2()
}

func TestAcquirePidFileStale(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "virtstoraged.pid")
	// A daemon that crashed leaves its (longer) pid behind without a lock.
	if err := os.WriteFile(path, []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	release, err := process.AcquirePidFile(path)
	if err != nil {
		t.Fatalf("AcquirePidFile() over a stale file error = %v", err)
	}
	defer release()
	b, _ := os.ReadFile(path)
	if string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("pid file holds %q", b)
	}
}

func TestReadPidFileGarbage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "p")
	if err := os.WriteFile(path, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := process.ReadPidFile(path); err == nil {
		t.Fatal("ReadPidFile accepted garbage")
	}
}
