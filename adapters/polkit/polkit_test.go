package polkit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/virtstoraged-go/virtstoraged/adapters/polkit"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// question is what a CheckAuthorization call carried.
type question struct {
	Kind    string
	Details map[string]any
	Action  string
	Extra   map[string]string
	Flags   uint32
	Cancel  string
}

// fakeAuthority stands for polkitd on a private bus: it records each
// question and gives the answer (or D-Bus error) it holds.
type fakeAuthority struct {
	mu     sync.Mutex
	asked  []question
	answer struct {
		Authorized, Challenge bool
		Details               map[string]string
	}
	fail *dbus.Error
}

type subject struct {
	Kind    string
	Details map[string]dbus.Variant
}

type result struct {
	Authorized, Challenge bool
	Details               map[string]string
}

// CheckAuthorization is org.freedesktop.PolicyKit1.Authority's method.
func (f *fakeAuthority) CheckAuthorization(s subject, action string, details map[string]string, flags uint32, cancel string) (result, *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := question{Kind: s.Kind, Details: map[string]any{}, Action: action, Extra: details, Flags: flags, Cancel: cancel}
	for k, v := range s.Details {
		q.Details[k] = v.Value()
	}
	f.asked = append(f.asked, q)
	if f.fail != nil {
		return result{}, f.fail
	}
	return result{f.answer.Authorized, f.answer.Challenge, f.answer.Details}, nil
}

// set changes the fake's answer between calls.
func (f *fakeAuthority) set(change func(f *fakeAuthority)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// serve puts the fake on bus under polkit's name.
func serve(t *testing.T, bus *testkit.Bus, f *fakeAuthority) {
	t.Helper()
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Export(f, "/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.PolicyKit1.Authority"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.PolicyKit1", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v %v", reply, err)
	}
}

func wantErr(t *testing.T, err error, kind domain.Kind, dom int32, msg string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != kind || de.ErrorDomain() != dom || de.Error() != msg {
		t.Errorf("got %v, want code %d domain %d %q", err, kind.Code(), dom, msg)
	}
}

// The answers and their libvirt errors (virPolkitCheckAuth's), and the
// question as libvirt asks it: a unix-process subject with pid (uint32),
// start-time (uint64) and uid (int32), no details, user interaction allowed.
func TestCheckAuthorization(t *testing.T) {
	t.Parallel()
	bus := testkit.StartDBus(t)
	f := &fakeAuthority{}
	serve(t, bus, f)
	a := polkit.NewWithAddress(nil, bus.Address)
	t.Cleanup(func() { _ = a.Close() })
	ctx := context.Background()
	pid := int32(os.Getpid())
	start, err := polkit.StartTime("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}

	f.set(func(f *fakeAuthority) { f.answer.Authorized = true })
	if err := a.CheckAuthorization(ctx, polkit.ActionManage, pid, 1000); err != nil {
		t.Fatalf("authorized: %v", err)
	}
	want := question{Kind: "unix-process", Details: map[string]any{"pid": uint32(pid), "start-time": start, "uid": int32(1000)},
		Action: "org.libvirt.unix.manage", Extra: map[string]string{}, Flags: 1}
	f.set(func(f *fakeAuthority) {
		if len(f.asked) != 1 || !reflect.DeepEqual(f.asked[0], want) {
			t.Errorf("asked %+v\nwant %+v", f.asked, want)
		}
	})

	f.set(func(f *fakeAuthority) { f.answer.Authorized, f.answer.Challenge = false, true })
	wantErr(t, a.CheckAuthorization(ctx, polkit.ActionMonitor, pid, 1000), domain.KindAuthUnavailable, 60,
		"authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.monitor'")
	f.set(func(f *fakeAuthority) { f.answer.Challenge = false })
	wantErr(t, a.CheckAuthorization(ctx, polkit.ActionManage, pid, 1000), domain.KindAuthFailed, 60,
		"authentication failed: access denied by policy")
	f.set(func(f *fakeAuthority) { f.answer.Details = map[string]string{"polkit.dismissed": "true"} })
	wantErr(t, a.CheckAuthorization(ctx, polkit.ActionManage, pid, 1000), domain.KindAuthCancelled, 60,
		"authentication cancelled: user cancelled authentication process")
	f.set(func(f *fakeAuthority) {
		f.fail = &dbus.Error{Name: "org.freedesktop.PolicyKit1.Error.Failed", Body: []any{"Action org.libvirt.unix.manage is not registered"}}
	})
	wantErr(t, a.CheckAuthorization(ctx, polkit.ActionManage, pid, 1000), domain.KindDBusService, 47,
		"error from service: GDBus.Error:org.freedesktop.PolicyKit1.Error.Failed: Action org.libvirt.unix.manage is not registered")
}

// Where polkit is not running, or there is no bus at all, the texts are the
// ones libvirtd 9.0 gave in the same places (measured with polkitd stopped
// and with DBUS_SYSTEM_BUS_ADDRESS naming no socket).
func TestNoPolkit(t *testing.T) {
	t.Parallel()
	bus := testkit.StartDBus(t)
	a := polkit.NewWithAddress(nil, bus.Address)
	t.Cleanup(func() { _ = a.Close() })
	pid := int32(os.Getpid())
	wantErr(t, a.CheckAuthorization(context.Background(), polkit.ActionManage, pid, 0), domain.KindDBusService, 47,
		"error from service: GDBus.Error:org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.PolicyKit1 was not provided by any .service files")

	none := polkit.NewWithAddress(nil, "unix:path="+filepath.Join(t.TempDir(), "nobus"))
	wantErr(t, none.CheckAuthorization(context.Background(), polkit.ActionManage, pid, 0), domain.KindInternal, 47,
		"internal error: Unable to get system bus connection: Could not connect: No such file or directory")
}

// A bus that goes away is connected to again at the next check.
func TestReconnect(t *testing.T) {
	t.Parallel()
	bus := testkit.StartDBus(t)
	a := polkit.NewWithAddress(nil, bus.Address)
	t.Cleanup(func() { _ = a.Close() })
	pid := int32(os.Getpid())
	ctx := context.Background()
	if err := a.CheckAuthorization(ctx, polkit.ActionManage, pid, 0); domain.KindOf(err) != domain.KindDBusService {
		t.Fatalf("first check: %v", err)
	}
	bus.Stop()
	if err := a.CheckAuthorization(ctx, polkit.ActionManage, pid, 0); err == nil {
		t.Fatal("check on a stopped bus succeeded")
	}
	// Same socket path, new bus, with an authority on it this time.
	again := testkit.StartDBusAt(t, bus.Socket)
	f := &fakeAuthority{}
	f.answer.Authorized = true
	serve(t, again, f)
	if err := a.CheckAuthorization(ctx, polkit.ActionManage, pid, 0); err != nil {
		t.Errorf("after the bus came back: %v", err)
	}
}

func TestStartTime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name     string
		giveStat string
		wantErr  bool
	}{
		{name: "plain", giveStat: "4242 (virsh) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 1000 100"},
		{name: "name with spaces and parentheses", giveStat: "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 1000 100"},
		{name: "short", giveStat: "4242 (virsh) S 1", wantErr: true},
		{name: "no name", giveStat: "4242 virsh S", wantErr: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid := int32(1000 + i)
			if err := os.MkdirAll(filepath.Join(dir, strconv.Itoa(int(pid))), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(int(pid)), "stat"), []byte(tt.giveStat+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := polkit.StartTime(dir, pid)
			if tt.wantErr {
				if err == nil {
					t.Errorf("StartTime = %d, want an error", got)
				}
				return
			}
			if err != nil || got != 123456 {
				t.Errorf("StartTime = %d, %v, want 123456", got, err)
			}
		})
	}
	_, err := polkit.StartTime(dir, 1)
	wantErr(t, err, domain.KindSystem, 18, "Failed to open file '"+filepath.Join(dir, "1", "stat")+"': No such file or directory")
}
