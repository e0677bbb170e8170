package lab

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"6.1.0-9-amd64", "6.1.0-57-amd64", true},
		{"6.1.0-57-amd64", "6.1.0-9-amd64", false},
		{"6.1.0-57-amd64", "6.12.0-1-amd64", true},
		{"5.10.0-30-amd64", "6.1.0-1-amd64", true},
		{"6.1.0-57-amd64", "6.1.0-57-amd64", false},
		{"6.1.0-57-amd64", "6.1.0-57-cloud-amd64", true}, // "amd64" < "cloud-amd64"
		{"6.1", "6.1.0", true},
		{"6.1.007", "6.1.8", true}, // leading zeros do not make a number bigger
		{"6.1.10", "6.1.009", false},
	}
	for _, tt := range tests {
		if got := versionLess(tt.a, tt.b); got != tt.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFindKernel(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":                 "old",
		"boot/vmlinuz-6.1.0-57-amd64":                "new",
		"boot/vmlinuz-6.2.0-1-amd64":                 "no modules",
		"modules/6.1.0-9-amd64/modules.dep":          "",
		"modules/6.1.0-57-amd64/modules.dep":         "",
		"modules/6.3.0-1-amd64/modules.dep":          "", // no image
		"boot/config-6.1.0-57-amd64":                 "",
		"boot/System.map-6.1.0-57-amd64":             "",
		"modules/6.1.0-57-amd64/modules.builtin.bin": "",
	})
	k, err := FindKernel(filepath.Join(root, "boot"), filepath.Join(root, "modules"))
	if err != nil {
		t.Fatal(err)
	}
	want := Kernel{
		Version:   "6.1.0-57-amd64",
		Image:     filepath.Join(root, "boot/vmlinuz-6.1.0-57-amd64"),
		ModuleDir: filepath.Join(root, "modules/6.1.0-57-amd64"),
	}
	if k != want {
		t.Errorf("FindKernel = %+v, want %+v", k, want)
	}

	empty := t.TempDir()
	if _, err := FindKernel(empty, empty); !errors.Is(err, ErrNoKernel) {
		t.Errorf("FindKernel with nothing installed: %v, want ErrNoKernel", err)
	}
}

func TestLoadOrder(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"modules.dep": "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko kernel/fs/fscache/fscache.ko\n" +
			"kernel/net/9p/9pnet.ko:\n" +
			"kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n" +
			"kernel/fs/netfs/netfs.ko:\n" +
			"kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n" +
			"kernel/drivers/virtio/virtio_ring.ko:\n" +
			"kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n" +
			"kernel/drivers/dm-mod.ko.xz:\n",
		"modules.builtin": "kernel/fs/overlayfs/overlay.ko\n",
	})
	md, err := readModuleDeps(dir)
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := readBuiltin(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := md.loadOrder([]string{"9pnet_virtio", "9p", "overlay", "dm_mod"}, builtin)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/net/9p/9pnet.ko",
		"kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio.ko",
		"kernel/net/9p/9pnet_virtio.ko",
		"kernel/fs/netfs/netfs.ko",
		"kernel/fs/fscache/fscache.ko",
		"kernel/fs/9p/9p.ko",
		"kernel/drivers/dm-mod.ko.xz",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loadOrder = %q\nwant %q", got, want)
	}
	if _, err := md.loadOrder([]string{"nosuch"}, builtin); err == nil {
		t.Error("loadOrder of an unknown module: no error")
	}
}
