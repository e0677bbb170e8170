package osexec_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// procUmask reads the process umask without changing it.
func procUmask(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Umask:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "Umask:"))
		}
	}
	t.Fatal("no Umask in /proc/self/status")
	return ""
}

// A command with a credential runs as that user and no longer as root: root
// may write any directory, the user only its own. touch(1) creates with
// 0666, so the file's mode shows the umask the command ran with.
func TestRunWithCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("taking another uid needs root (CI runs as root): skipping the credential test")
	}
	const uid = 4321
	cred := &ports.Credential{UID: uid, GID: uid, Groups: []uint32{uid, uid + 1}}
	r := osexec.New(nil)
	ctx := context.Background()
	before := procUmask(t)

	owned := filepath.Join(testkit.OwnedDir(t, uid), "f")
	if _, err := r.Run(ctx, ports.Command{Path: "touch", Args: []string{owned}, Cred: cred, Umask: 0o077}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(owned, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != uid || st.Gid != uid || st.Mode&0o777 != 0o600 {
		t.Errorf("made %d:%d %04o, want %d:%d 0600", st.Uid, st.Gid, st.Mode&0o777, uid, uid)
	}

	rootOnly := filepath.Join(testkit.OwnedDir(t, 0), "f")
	_, err := r.Run(ctx, ports.Command{Path: "touch", Args: []string{rootOnly}, Cred: cred})
	if code, ok := ports.ExitStatus(err); !ok || code == 0 {
		t.Errorf("touch in a root-only directory as %d: %v, want a failure", uid, err)
	}
	if _, err := r.Run(ctx, ports.Command{Path: "touch", Args: []string{rootOnly}}); err != nil {
		t.Errorf("touch as the daemon: %v", err)
	}

	out, err := r.Run(ctx, ports.Command{Path: "id", Args: []string{"-G"}, Cred: cred})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "4321 4322" {
		t.Errorf("groups %q, want the credential's 4321 4322", got)
	}
	// The umask was the child's alone.
	if after := procUmask(t); after != before {
		t.Errorf("daemon umask %s after the run, was %s", after, before)
	}
}
