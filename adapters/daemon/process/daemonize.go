package process

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ReadyFDEnv marks the re-executed daemon and names the fd of its readiness
// pipe; its presence is how Daemonize knows which side it is on.
const ReadyFDEnv = "VIRTSTORAGED_DAEMON_READY_FD"

const (
	readyOK  = "OK"
	readyErr = "ERR "
)

// DaemonConfig describes how to re-execute the daemon; the zero value runs
// this binary again with the same arguments and environment.
type DaemonConfig struct {
	Executable string
	Args       []string
	Env        []string
}

// Child is the daemon's end of the readiness pipe: call Ready once the
// sockets listen, or Fail when startup went wrong. Either releases the parent.
type Child struct {
	once sync.Once
	f    *os.File
}

// Ready tells the waiting parent to exit 0.
func (c *Child) Ready() error { return c.send(readyOK) }

// Fail tells the waiting parent to print err and exit 1.
func (c *Child) Fail(err error) error {
	return c.send(readyErr + strings.ReplaceAll(err.Error(), "\n", " "))
}

func (c *Child) send(msg string) error {
	var err error
	sent := false
	c.once.Do(func() {
		sent = true
		_, err = io.WriteString(c.f, msg+"\n")
		if cerr := c.f.Close(); err == nil {
			err = cerr
		}
	})
	if !sent {
		return errors.New("process: readiness already reported")
	}
	if err != nil {
		return fmt.Errorf("process: report readiness: %w", err)
	}
	return nil
}

// Daemonize implements -d the only way Go allows (a Go process cannot fork):
// the parent re-executes the binary in a new session with stdio on
// /dev/null and waits for it to report.
//
// In the re-executed daemon it returns a Child and nil: carry on starting
// up, then call Ready or Fail. In the parent it returns a nil Child, and nil
// once the daemon reported ready (exit 0) or the daemon's error (exit 1).
func Daemonize(c DaemonConfig) (*Child, error) {
	if v, ok := os.LookupEnv(ReadyFDEnv); ok {
		// Our own children (qemu-img and the like) must not think they
		// are the daemon.
		_ = os.Unsetenv(ReadyFDEnv)
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("process: bad %s=%q", ReadyFDEnv, v)
		}
		f := os.NewFile(uintptr(fd), "ready-pipe")
		if f == nil {
			return nil, fmt.Errorf("process: fd %d from %s is not open", fd, ReadyFDEnv)
		}
		syscall.CloseOnExec(fd)
		return &Child{f: f}, nil
	}
	return nil, runParent(c)
}

func runParent(c DaemonConfig) error {
	exe := c.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("process: find own executable: %w", err)
		}
	}
	args := c.Args
	if args == nil {
		args = os.Args[1:]
	}
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	// Socket activation fds were meant for this process, not the child.
	kept := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "LISTEN_PID=") && !strings.HasPrefix(kv, "LISTEN_FDS=") &&
			!strings.HasPrefix(kv, "LISTEN_FDNAMES=") && !strings.HasPrefix(kv, ReadyFDEnv+"=") {
			kept = append(kept, kv)
		}
	}
	kept = append(kept, ReadyFDEnv+"=3") // ExtraFiles[0] is always fd 3

	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("process: readiness pipe: %w", err)
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("process: open %s: %w", os.DevNull, err)
	}
	defer null.Close()

	cmd := exec.Command(exe, args...)
	cmd.Env = kept
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w}
	// A new session detaches from the terminal, so that its hangup or ^C
	// does not reach the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return fmt.Errorf("process: start daemon: %w", err)
	}
	// Only the child may hold the write end, or EOF would never come.
	_ = w.Close()

	line, rerr := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	switch {
	case line == readyOK:
		_ = cmd.Process.Release()
		return nil
	case strings.HasPrefix(line, readyErr):
		_ = cmd.Wait()
		return fmt.Errorf("process: daemon failed to start: %s", strings.TrimPrefix(line, readyErr))
	}
	werr := cmd.Wait()
	if werr == nil {
		werr = rerr
	}
	return fmt.Errorf("process: daemon exited during startup without reporting: %v", werr)
}
