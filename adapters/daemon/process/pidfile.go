package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrPidFileLocked is wrapped by AcquirePidFile's error when another process
// holds the pid file.
var ErrPidFileLocked = errors.New("process: pid file is locked")

// AcquirePidFile creates path (and its directory), takes an exclusive flock on
// it for as long as the process lives and writes the pid into it. A second
// daemon on the same path fails with the first one's pid in the error and
// leaves the file alone; a file nobody holds a lock on is stale and reused.
// release removes the file and drops the lock.
func AcquirePidFile(path string) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("process: pid file directory: %w", err)
	}
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("process: open pid file: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				holder := "unknown pid"
				if b, rerr := os.ReadFile(path); rerr == nil && strings.TrimSpace(string(b)) != "" {
					holder = "pid " + strings.TrimSpace(string(b))
				}
				return nil, fmt.Errorf("%w: %s is held by %s: is another %s running?", ErrPidFileLocked, path, holder, Name)
			}
			return nil, fmt.Errorf("process: lock pid file %s: %w", path, err)
		}
		// The previous holder may have unlinked the file between our open
		// and our lock; a lock on an orphaned inode protects nothing.
		same, err := sameFile(f, path)
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		if !same {
			_ = f.Close()
			if attempt > 10 {
				return nil, fmt.Errorf("process: pid file %s keeps being replaced", path)
			}
			continue
		}
		// Truncate then write in one call: a reader sees either nothing or
		// the whole pid, never part of it.
		if err := f.Truncate(0); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("process: pid file: %w", err)
		}
		if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("process: write pid file: %w", err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("process: sync pid file: %w", err)
		}
		return func() {
			// Unlink while still holding the lock, so that no newcomer can
			// lock the old inode and then lose its file to this removal.
			_ = os.Remove(path)
			_ = f.Close()
		}, nil
	}
}

func sameFile(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("process: stat pid file: %w", err)
	}
	b, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("process: stat pid file: %w", err)
	}
	return os.SameFile(a, b), nil
}

// ReadPidFile returns the pid recorded in path.
func ReadPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("process: read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("process: pid file %s holds %q, not a pid", path, b)
	}
	return pid, nil
}
