package testkit

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FakeDM is one device-mapper device of a fake sysfs tree.
type FakeDM struct {
	Minor   int    // the N of dm-N
	Name    string // dm/name, the /dev/mapper name
	UUID    string // dm/uuid; multipath maps start with "mpath-"
	Sectors uint64 // size, in 512-byte sectors
	// NoDM leaves out the dm/ directory (a half-registered device).
	NoDM bool
}

// NewFakeSysfs builds a temporary sysfs tree holding SYSFS/block/dm-N for
// each device (dm/name, dm/uuid, size), plus a loop0 entry that is no
// device-mapper device, and returns its root.
func NewFakeSysfs(t testing.TB, devs ...FakeDM) string {
	t.Helper()
	root := t.TempDir()
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "block", "loop0", "size"), "131072\n")
	for _, d := range devs {
		dir := filepath.Join(root, "block", "dm-"+strconv.Itoa(d.Minor))
		write(filepath.Join(dir, "size"), strconv.FormatUint(d.Sectors, 10)+"\n")
		if d.NoDM {
			continue
		}
		write(filepath.Join(dir, "dm", "name"), d.Name+"\n")
		write(filepath.Join(dir, "dm", "uuid"), d.UUID+"\n")
	}
	return root
}
