package backende2e_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestMpathPool lists the multipath maps of a fake sysfs tree through virsh:
// only device-mapper devices whose uuid starts with "mpath-" are volumes,
// named dm-N with their /dev/mapper path; the pool refuses new volumes and
// deletion with libvirt's texts. It needs no root: the daemon reads sysfs
// under --sysfs-root and touches no device.
func TestMpathPool(t *testing.T) {
	sysfs := testkit.NewFakeSysfs(t,
		testkit.FakeDM{Minor: 0, Name: "mpatha", UUID: "mpath-3600a098038303053453f463045727a41", Sectors: 204800},
		testkit.FakeDM{Minor: 1, Name: "vg0-root", UUID: "LVM-Wq1ZzRkq0eUfh3B8JtV1gWmF3v5m0s9aQ2nX", Sectors: 8192},
		testkit.FakeDM{Minor: 3, Name: "mpathb", UUID: "mpath-3600a098038303053453f463045727a42", Sectors: 409600},
	)
	d := startDaemon(t, testkit.DaemonOptions{Args: []string{"--sysfs-root", sysfs}})

	virshOK(t, d, "pool-define-as", "mp", "mpath", "--target", "/dev/mapper")
	virshOK(t, d, "pool-start", "mp")

	rows := volList(t, d, "mp")
	tests := []struct {
		name string
		want volRow
	}{
		{name: "dm-0", want: volRow{Name: "dm-0", Path: "/dev/mapper/mpatha", Type: "block", Capacity: "100.00 MiB", Allocation: "100.00 MiB"}},
		{name: "dm-3", want: volRow{Name: "dm-3", Path: "/dev/mapper/mpathb", Type: "block", Capacity: "200.00 MiB", Allocation: "200.00 MiB"}},
	}
	for _, tc := range tests {
		if got := rows[tc.name]; got != tc.want {
			t.Errorf("vol-list --details row %s = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if len(rows) != len(tests) {
		t.Errorf("vol-list --details = %v, want only the two multipath maps (dm-1 is an LVM device)", rows)
	}
	if out := virshOK(t, d, "vol-dumpxml", "dm-3", "--pool", "mp"); !strings.Contains(out, "<capacity unit='bytes'>209715200</capacity>") ||
		!strings.Contains(out, "<key>/dev/mapper/mpathb</key>") {
		t.Errorf("vol-dumpxml dm-3 lacks capacity 209715200 or key /dev/mapper/mpathb:\n%s", out)
	}
	pi := info(t, d, "pool-info", "mp")
	if pi["State"] != "running" || pi["Capacity"] != "300.00 MiB" || pi["Allocation"] != "300.00 MiB" || pi["Available"] != "0.00 B" {
		t.Errorf("pool-info mp = %v, want running, capacity = allocation = 300.00 MiB, nothing available", pi)
	}

	// multipathd adds a map: a refresh shows it, sized from sysfs.
	addMap(t, sysfs, 7, "mpathc", "mpath-3600a098038303053453f463045727a43", 2048)
	virshOK(t, d, "pool-refresh", "mp")
	wantC := volRow{Name: "dm-7", Path: "/dev/mapper/mpathc", Type: "block", Capacity: "1.00 MiB", Allocation: "1.00 MiB"}
	if rows = volList(t, d, "mp"); rows["dm-7"] != wantC || len(rows) != 3 {
		t.Errorf("after a new map and pool-refresh, vol-list = %v, want dm-0, dm-3 and %+v", rows, wantC)
	}
	if got := strings.TrimSpace(virshOK(t, d, "vol-path", "dm-7", "--pool", "mp")); got != "/dev/mapper/mpathc" {
		t.Errorf("vol-path dm-7 = %q, want /dev/mapper/mpathc", got)
	}
	if got := strings.TrimSpace(virshOK(t, d, "vol-name", "/dev/mapper/mpathc")); got != "dm-7" {
		t.Errorf("vol-name /dev/mapper/mpathc = %q, want dm-7", got)
	}

	virshErr(t, d, []string{
		"error: this function is not supported by the connection driver: storage pool does not support changing of volume capacity",
	}, "vol-resize", "dm-0", "1G", "--pool", "mp")
	virshErr(t, d, []string{
		"error: Failed to create vol dm-9",
		"error: this function is not supported by the connection driver: storage pool does not support volume creation",
	}, "vol-create-as", "mp", "dm-9", "1M")
	virshErr(t, d, []string{
		"error: this function is not supported by the connection driver: storage pool does not support vol deletion",
	}, "vol-delete", "dm-0", "--pool", "mp")
	// libvirt checks that the pool is inactive before asking the backend.
	virshErr(t, d, []string{
		"error: Failed to delete pool mp",
		"error: Requested operation is not valid: storage pool 'mp' is still active",
	}, "pool-delete", "mp")

	virshOK(t, d, "pool-destroy", "mp")
	virshErr(t, d, []string{
		"error: Failed to delete pool mp",
		"error: this function is not supported by the connection driver: pool does not support pool deletion",
	}, "pool-delete", "mp")
	if out := virshOK(t, d, "pool-dumpxml", "mp"); !strings.Contains(out, "<path>/dev/mapper</path>") {
		t.Errorf("pool-dumpxml mp lacks the /dev/mapper target:\n%s", out)
	}
	// multipathd builds the maps: pool-build has nothing to do.
	virshOK(t, d, "pool-build", "mp")

	// libvirt decides at daemon start from the legacy /dev/mpath directory.
	virshOK(t, d, "pool-start", "mp")
	d.Restart(t)
	wantState := "inactive"
	if st, err := os.Stat("/dev/mpath"); err == nil && st.IsDir() {
		wantState = "running"
	}
	if got := poolState(t, d, "mp"); got != wantState {
		t.Errorf("after a daemon restart, State %q, want %s", got, wantState)
	}
	if wantState == "running" {
		virshOK(t, d, "pool-destroy", "mp")
	}
	virshOK(t, d, "pool-undefine", "mp")

	// Whatever target is given, an mpath pool's is /dev/mapper.
	virshOK(t, d, "pool-define-as", "mp2", "mpath", "--target", filepath.Join(d.Root, "elsewhere"))
	if out := virshOK(t, d, "pool-dumpxml", "mp2"); !strings.Contains(out, "<path>/dev/mapper</path>") {
		t.Errorf("pool-dumpxml mp2: target not forced to /dev/mapper:\n%s", out)
	}
	virshOK(t, d, "pool-undefine", "mp2")
}

// addMap adds a multipath map to a fake sysfs tree, as multipathd would.
func addMap(t *testing.T, sysfs string, minor int, name, uuid string, sectors uint64) {
	t.Helper()
	dir := filepath.Join(sysfs, "block", "dm-"+strconv.Itoa(minor))
	if err := os.MkdirAll(filepath.Join(dir, "dm"), 0o755); err != nil {
		t.Fatal(err)
	}
	for file, content := range map[string]string{
		"size":    strconv.FormatUint(sectors, 10),
		"dm/name": name,
		"dm/uuid": uuid,
	} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
