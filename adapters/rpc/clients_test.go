package rpc_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

func TestGoLibvirtClient(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	nc, err := net.Dial("unix", d.rw)
	if err != nil {
		t.Fatal(err)
	}
	l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(nc))
	if err := l.ConnectToURI(libvirt.ConnectURI("storage:///system")); err != nil {
		t.Fatalf("ConnectToURI: %v", err)
	}
	defer l.Disconnect()

	if v, err := l.ConnectGetLibVersion(); err != nil || v != 9000000 {
		t.Errorf("ConnectGetLibVersion = %d, %v", v, err)
	}
	pools, n, err := l.ConnectListAllStoragePools(1, 0)
	if err != nil || n != 3 || len(pools) != 3 {
		t.Fatalf("ConnectListAllStoragePools = %v %d %v", pools, n, err)
	}
	pool, err := l.StoragePoolLookupByName("images")
	if err != nil {
		t.Fatal(err)
	}
	vol, err := l.StorageVolLookupByName(pool, "disk.img")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("0123456789"), 500)
	if err := l.StorageVolUpload(vol, bytes.NewReader(payload), 0, 0, 0); err != nil {
		t.Fatalf("StorageVolUpload: %v", err)
	}
	waitClosed(t, d.api.lastUpload().done, "upload finish")
	var got bytes.Buffer
	if err := l.StorageVolDownload(vol, &got, 0, 0, 0); err != nil {
		t.Fatalf("StorageVolDownload: %v", err)
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Errorf("downloaded %d bytes, want the %d uploaded", got.Len(), len(payload))
	}
	// go-libvirt never finishes the download; the connection must go on.
	_, err = l.StoragePoolLookupByName("missing")
	if err == nil || !strings.Contains(err.Error(), "Storage pool not found: no storage pool with matching name 'missing'") {
		t.Errorf("lookup of a missing pool: %v", err)
	}
	if _, err := l.ConnectGetVersion(); err == nil {
		t.Error("ConnectGetVersion succeeded")
	}
}

// tool runs a libvirt command line tool, skipping the test when it is missing.
func tool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (CI installs libvirt-clients): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "LC_ALL=C", "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home, "LIBVIRT_DEFAULT_URI=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestVirsh(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	uri := "storage:///system?socket=" + d.rw
	tests := []struct {
		name     string
		giveArgs []string
		wantOut  []string
		wantErr  bool
	}{
		{name: "uri", giveArgs: []string{"uri"}, wantOut: []string{"storage:///system"}},
		{name: "pool-list", giveArgs: []string{"pool-list", "--all"}, wantOut: []string{"default", "images", "slow", "active"}},
		{name: "pool-info", giveArgs: []string{"pool-info", "images"}, wantOut: []string{"images", "running", "1.00 GiB"}},
		{name: "vol-list", giveArgs: []string{"vol-list", "images"}, wantOut: []string{"disk.img", "/pools/images/disk.img"}},
		{name: "missing pool", giveArgs: []string{"pool-info", "nosuch"}, wantErr: true,
			wantOut: []string{"Storage pool not found: no storage pool with matching name 'nosuch'"}},
		{name: "version", giveArgs: []string{"version"}, wantErr: true,
			wantOut: []string{"this function is not supported by the connection driver: virConnectGetVersion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tool(t, "virsh", append([]string{"-c", uri}, tt.giveArgs...)...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("virsh %v: err %v\n%s", tt.giveArgs, err, out)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("virsh %v output lacks %q:\n%s", tt.giveArgs, w, out)
				}
			}
		})
	}
	t.Run("read-only socket refuses writes", func(t *testing.T) {
		out, err := tool(t, "virsh", "-c", "storage:///system?socket="+d.ro, "pool-refresh", "images")
		if err == nil || !strings.Contains(out, "operation forbidden: read only access prevents virStoragePoolRefresh") {
			t.Errorf("pool-refresh via ro socket: %v\n%s", err, out)
		}
	})
	t.Run("pool-event", func(t *testing.T) {
		stop := make(chan struct{})
		go func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					d.hub.PoolLifecycle(domain.PoolHandle{Name: "images", UUID: domain.UUID{15: 2}}, domain.EventStopped, 0)
				}
			}
		}()
		out, err := tool(t, "virsh", "-c", uri, "pool-event", "--event", "lifecycle", "--loop", "--timeout", "2")
		close(stop)
		if err != nil || !strings.Contains(out, "event 'lifecycle' for storage pool images: Stopped") {
			t.Errorf("pool-event: %v\n%s", err, out)
		}
	})
	t.Run("upload and download", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		data := bytes.Repeat([]byte("virtstoraged"), 100000) // 1.2 MB, several packets
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := tool(t, "virsh", "-c", uri, "vol-upload", "--pool", "images", "disk.img", src); err != nil {
			t.Fatalf("vol-upload: %v\n%s", err, out)
		}
		dst := filepath.Join(dir, "dst")
		if out, err := tool(t, "virsh", "-c", uri, "vol-download", "--pool", "images", "disk.img", dst); err != nil {
			t.Fatalf("vol-download: %v\n%s", err, out)
		}
		got, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("downloaded %d bytes, want %d (%v)", len(got), len(data), err)
		}
	})
}

func TestVirtAdmin(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, func(c *rpc.Config) { c.LogControl = &fakeLog{outputs: "3:stderr", filters: "1:storage"} })
	// One remote client for srv-clients-list.
	cl := d.client(t, d.rw, "storage:///system", 0)
	if _, err := cl.ConnectGetType(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	uri := "virtstoraged:///system?socket=" + d.adm
	tests := []struct {
		name     string
		giveArgs []string
		wantOut  []string
	}{
		{name: "srv-list", giveArgs: []string{"srv-list"}, wantOut: []string{"virtstoraged", "admin"}},
		{name: "srv-threadpool-info", giveArgs: []string{"srv-threadpool-info", "virtstoraged"},
			wantOut: []string{"minWorkers", "maxWorkers", "20", "prioWorkers", "jobQueueDepth"}},
		{name: "srv-clients-list", giveArgs: []string{"srv-clients-list", "virtstoraged"}, wantOut: []string{"unix"}},
		{name: "srv-clients-info", giveArgs: []string{"srv-clients-info", "virtstoraged"}, wantOut: []string{"nclients_max", "5000"}},
		{name: "daemon-log-filters", giveArgs: []string{"daemon-log-filters"}, wantOut: []string{"1:storage"}},
		{name: "daemon-log-outputs", giveArgs: []string{"daemon-log-outputs"}, wantOut: []string{"3:stderr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tool(t, "virt-admin", append([]string{"-c", uri}, tt.giveArgs...)...)
			if err != nil {
				t.Fatalf("virt-admin %v: %v\n%s", tt.giveArgs, err, out)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("virt-admin %v output lacks %q:\n%s", tt.giveArgs, w, out)
				}
			}
		})
	}
	t.Run("threadpool-set", func(t *testing.T) {
		if out, err := tool(t, "virt-admin", "-c", uri, "srv-threadpool-set", "virtstoraged", "--max-workers", "30"); err != nil {
			t.Fatalf("srv-threadpool-set: %v\n%s", err, out)
		}
		out, err := tool(t, "virt-admin", "-c", uri, "srv-threadpool-info", "virtstoraged")
		if err != nil || !strings.Contains(out, "30") {
			t.Errorf("after set: %v\n%s", err, out)
		}
	})
	t.Run("client-info and client-disconnect", func(t *testing.T) {
		out, err := tool(t, "virt-admin", "-c", uri, "srv-clients-list", "virtstoraged")
		if err != nil {
			t.Fatal(err)
		}
		var id string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[1] == "unix" {
				id = f[0]
			}
		}
		if id == "" {
			t.Fatalf("no client in:\n%s", out)
		}
		out, err = tool(t, "virt-admin", "-c", uri, "client-info", "virtstoraged", id)
		if err != nil || !strings.Contains(out, "unix_user_id") || !strings.Contains(out, "unix_process_id") || !strings.Contains(out, "readonly") {
			t.Errorf("client-info: %v\n%s", err, out)
		}
		if out, err := tool(t, "virt-admin", "-c", uri, "client-disconnect", "virtstoraged", id); err != nil {
			t.Fatalf("client-disconnect: %v\n%s", err, out)
		}
		select {
		case <-cl.Conn().Done():
		case <-time.After(5 * time.Second):
			t.Error("client not disconnected")
		}
	})
	t.Run("unknown server", func(t *testing.T) {
		out, err := tool(t, "virt-admin", "-c", uri, "srv-threadpool-info", "nosuch")
		if err == nil || !strings.Contains(out, "No server named 'nosuch'") {
			t.Errorf("unknown server: %v\n%s", err, out)
		}
	})
}

func TestLibvirtPython(t *testing.T) {
	t.Parallel()
	// The distribution's python has python3-libvirt; a pyenv one first in PATH may not.
	python := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import libvirt").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Skip("no python3 with the libvirt module (python3-libvirt)")
	}
	d := startDaemon(t)
	script := `
import sys, libvirt
c = libvirt.open(sys.argv[1])
names = sorted(p.name() for p in c.listAllStoragePools())
print(",".join(names))
p = c.storagePoolLookupByName("images")
print(p.info()[0], p.isActive())
try:
    c.storagePoolLookupByName("nosuch")
except libvirt.libvirtError as e:
    print(e.get_error_code(), e.get_error_domain(), e.get_error_message())
c.close()
`
	out, err := tool(t, python, "-c", script, "storage:///system?socket="+d.rw)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	// stdout and stderr are combined: libvirt's default error handler also prints.
	for _, want := range []string{"default,images,slow\n", "\n2 1\n", "\n49 18 Storage pool not found: no storage pool with matching name 'nosuch'\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("python output lacks %q:\n%s", want, out)
		}
	}
}
