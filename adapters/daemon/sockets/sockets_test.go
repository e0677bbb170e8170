package sockets_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/sockets"
)

func TestListenPerms(t *testing.T) {
	t.Parallel()
	for _, perms := range []os.FileMode{0o700, 0o770, 0o777} {
		t.Run(perms.String(), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "run", "libvirt", "virtstoraged-sock")
			l, err := sockets.Listen(path, perms, "")
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != perms {
				t.Fatalf("socket mode = %v, want socket %v", fi.Mode(), perms)
			}
			if got := l.Addr().String(); got != path {
				t.Errorf("Addr() = %q, want %q", got, path)
			}
			// The temporary name the socket was bound under must be gone.
			if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
				t.Errorf("socket directory holds %d entries, want only the socket", len(ents))
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial the renamed socket: %v", err)
			}
			c.Close()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Fatalf("socket still there after Close: %v", err)
			}
		})
	}
}

func TestListenStaleReplaced(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s")
	// A crashed daemon leaves its socket file behind with nobody listening.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	_ = old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("setup: stale socket missing: %v", err)
	}

	l, err := sockets.Listen(path, 0o700, "")
	if err != nil {
		t.Fatalf("Listen() over a stale socket error = %v", err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			_, _ = c.Write([]byte("x"))
			_ = c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the new socket: %v", err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestListenLiveRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s")
	first, err := sockets.Listen(path, 0o700, "")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = sockets.Listen(path, 0o700, "")
	if !errors.Is(err, sockets.ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Listen() error = %v, want ErrInUse naming %s", err, path)
	}
	// The first daemon must be untouched.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("first listener lost its socket: %v", err)
	}
	_ = c.Close()
}

func TestListenNotASocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sockets.Listen(path, 0o700, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen() over a regular file error = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatal("Listen() clobbered a regular file")
	}
}

func TestListenGroup(t *testing.T) {
	t.Parallel()
	gid := os.Getgid()
	name := strconv.Itoa(gid)
	if g, err := user.LookupGroupId(name); err == nil {
		name = g.Name
	}
	tests := []struct {
		name      string
		giveGroup string
		wantGid   int
		wantErr   string
	}{
		{name: "numeric gid", giveGroup: strconv.Itoa(gid), wantGid: gid},
		{name: "group name", giveGroup: name, wantGid: gid},
		{name: "unknown group", giveGroup: "no-such-group-virtstoraged", wantErr: "unix_sock_group"},
	}
	// As root, also move the socket to a group other than our own, so the
	// test sees a change rather than the default.
	if os.Geteuid() == 0 {
		for _, other := range []string{"daemon", "bin", "sys", "adm"} {
			if g, err := user.LookupGroup(other); err == nil && g.Gid != strconv.Itoa(gid) {
				want, _ := strconv.Atoi(g.Gid)
				tests = append(tests, struct {
					name      string
					giveGroup string
					wantGid   int
					wantErr   string
				}{name: "other group " + other, giveGroup: other, wantGid: want})
				break
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "s")
			l, err := sockets.Listen(path, 0o770, tt.giveGroup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Listen() error = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Lstat(path); !os.IsNotExist(err) {
					t.Fatal("a failed Listen() left a socket behind")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := int(fi.Sys().(*syscall.Stat_t).Gid); got != tt.wantGid {
				t.Fatalf("socket gid = %d, want %d", got, tt.wantGid)
			}
		})
	}
}

func TestPeerCred(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s")
	l, err := sockets.Listen(path, 0o700, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pid, uid, gid, err := sockets.PeerCred(s)
	if err != nil {
		t.Fatal(err)
	}
	if int(pid) != os.Getpid() || int(uid) != os.Geteuid() || int(gid) != os.Getegid() {
		t.Fatalf("PeerCred() = %d %d %d, want %d %d %d", pid, uid, gid, os.Getpid(), os.Geteuid(), os.Getegid())
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, _, _, err := sockets.PeerCred(a); err == nil {
		t.Fatal("PeerCred() on a pipe succeeded")
	}
}

const activationHelperEnv = "SOCKETS_TEST_ACTIVATION"

// TestActivationHelper is not a test: it is the socket-activated daemon the
// activation tests start by re-running this binary with fds passed in.
func TestActivationHelper(t *testing.T) {
	if os.Getenv(activationHelperEnv) == "" {
		t.Skip("helper process only")
	}
	rw, ro, admin, ok, err := sockets.FromSystemd()
	addr := func(l net.Listener) string {
		if l == nil {
			return "-"
		}
		return filepath.Base(l.Addr().String())
	}
	leftover := os.Getenv("LISTEN_PID") + os.Getenv("LISTEN_FDS") + os.Getenv("LISTEN_FDNAMES")
	fmt.Printf("RESULT: rw=%s ro=%s admin=%s ok=%v err=%v env=%q\n", addr(rw), addr(ro), addr(admin), ok, err, leftover)
	for _, l := range []net.Listener{rw, ro, admin} {
		if l != nil {
			_ = l.Close()
		}
	}
	os.Exit(0)
}

func TestFromSystemd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveFiles []string // socket file names, in fd order
		giveNames string   // LISTEN_FDNAMES; "" leaves it unset
		givePID   string   // "self" makes the child announce itself
		want      string
	}{
		{
			name:      "named in unit order",
			giveFiles: []string{"a", "b", "c"},
			giveNames: "virtstoraged.socket:virtstoraged-ro.socket:virtstoraged-admin.socket",
			givePID:   "self",
			want:      `rw=a ro=b admin=c ok=true err=<nil> env=""`,
		},
		{
			name:      "named in another order",
			giveFiles: []string{"a", "b", "c"},
			giveNames: "virtstoraged-admin.socket:virtstoraged.socket:virtstoraged-ro.socket",
			givePID:   "self",
			want:      `rw=b ro=c admin=a ok=true err=<nil> env=""`,
		},
		{
			name:      "session: rw and admin by name",
			giveFiles: []string{"a", "b"},
			giveNames: "virtstoraged-admin.socket:virtstoraged.socket",
			givePID:   "self",
			want:      `rw=b ro=- admin=a ok=true err=<nil> env=""`,
		},
		{
			name:      "three unnamed by order",
			giveFiles: []string{"a", "b", "c"},
			givePID:   "self",
			want:      `rw=a ro=b admin=c ok=true err=<nil> env=""`,
		},
		{
			name:      "two unnamed are rw and admin",
			giveFiles: []string{"a", "b"},
			givePID:   "self",
			want:      `rw=a ro=- admin=b ok=true err=<nil> env=""`,
		},
		{
			name:      "unexpected name",
			giveFiles: []string{"a"},
			giveNames: "libvirtd.socket",
			givePID:   "self",
			want:      `rw=- ro=- admin=- ok=false err=sockets: systemd passed an unexpected fd named "libvirtd.socket" (want virtstoraged.socket, virtstoraged-ro.socket or virtstoraged-admin.socket) env=""`,
		},
		{
			name:      "fds meant for another process",
			giveFiles: []string{"a"},
			givePID:   "1",
			want:      `rw=- ro=- admin=- ok=false err=<nil> env=""`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var files []*os.File
			for _, name := range tt.giveFiles {
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, name), Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				f, err := l.File()
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				files = append(files, f)
			}
			// LISTEN_PID must be the child's own pid, which only the child
			// knows before exec: the shell sets it and execs in place, as
			// systemd does between fork and exec.
			script := `export LISTEN_PID=$$; exec "$0" "$@"`
			if tt.givePID != "self" {
				script = `export LISTEN_PID=` + tt.givePID + `; exec "$0" "$@"`
			}
			cmd := exec.Command("/bin/sh", "-c", script, os.Args[0], "-test.run=^TestActivationHelper$")
			cmd.Env = append(os.Environ(), activationHelperEnv+"=1", "LISTEN_FDS="+strconv.Itoa(len(files)))
			if tt.giveNames != "" {
				cmd.Env = append(cmd.Env, "LISTEN_FDNAMES="+tt.giveNames)
			}
			cmd.ExtraFiles = files
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			var got string
			for _, line := range strings.Split(string(out), "\n") {
				if s, ok := strings.CutPrefix(line, "RESULT: "); ok {
					got = s
				}
			}
			if got != tt.want {
				t.Fatalf("FromSystemd() in the child = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFromSystemdNotActivated(t *testing.T) {
	// Runs in this process, where systemd passed nothing.
	t.Setenv("LISTEN_PID", "")
	t.Setenv("LISTEN_FDS", "")
	rw, ro, admin, ok, err := sockets.FromSystemd()
	if ok || err != nil || rw != nil || ro != nil || admin != nil {
		t.Fatalf("FromSystemd() = %v %v %v %v %v, want nothing", rw, ro, admin, ok, err)
	}
}
