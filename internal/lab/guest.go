package lab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// commandBound bounds one command a helper runs in the guest: LVM, exportfs
// or iscsiadm take a second or two under emulation, so a command still
// running after this has hung.
const commandBound = 2 * time.Minute

// Run runs a program in the guest (LC_ALL=C) and returns its combined
// output, failing the test when it cannot run or exits non-zero.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Try(name, args...)
	if err != nil {
		t.Fatalf("lab: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs a program like Run and returns its combined output and error
// instead of failing the test.
func Try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Killing the program at the bound does not end a child it left holding
	// the output pipe (iscsiadm's login did, under load), and Wait would wait
	// for that pipe forever.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// Sh runs a /bin/sh script in the guest like Run.
func Sh(t testing.TB, script string) string {
	t.Helper()
	return Run(t, "/bin/sh", "-c", script)
}

// Modprobe loads kernel modules (from the host's /lib/modules).
func Modprobe(t testing.TB, modules ...string) {
	t.Helper()
	Require(t)
	for _, m := range modules {
		Run(t, "modprobe", m)
	}
}
