package rbde2e_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestLifecycle drives an rbd pool through virsh against our daemon: define,
// start, info, create, list, upload and download (with and without holes, at
// an offset), clone, resize, wipe, delete with and without snapshots, and a
// refresh that finds an image made behind the daemon's back.
func TestLifecycle(t *testing.T) {
	needLab(t)
	ctx := context.Background()
	d, _ := startPool(t, "rlife", "life")

	info := must(t, d, "pool-info", "rlife")
	if !strings.Contains(info, "State:          running") || strings.Contains(info, "Capacity:       0.00 B") {
		t.Errorf("pool-info:\n%s", info)
	}
	must(t, d, "vol-create-as", "rlife", "v1", "12M")
	list := must(t, d, "vol-list", "rlife", "--details")
	if !regexp.MustCompile(`v1\s+life/v1\s+network\s+12.00 MiB`).MatchString(list) {
		t.Errorf("vol-list --details:\n%s", list)
	}
	if got := fails(t, d, "vol-create-as", "rlife", "q", "1M", "--format", "qcow2"); got != "error: unsupported configuration: only RAW volumes are supported by this storage pool" {
		t.Errorf("qcow2 volume: %q", got)
	}
	if got := fails(t, d, "vol-create-as", "rlife", "z", "0"); got != "error: this function is not supported by the connection driver: volume capacity required for this storage pool" {
		t.Errorf("empty volume: %q", got)
	}

	// Upload and download, whole and sparse, then a range.
	src, want := dataFile(t, 12<<20)
	must(t, d, "vol-upload", "--pool", "rlife", "v1", src)
	if got := sum(download(t, d, "rlife", "v1")); got != want {
		t.Errorf("download checksum %s, uploaded %s", got, want)
	}
	if got := sum(download(t, d, "rlife", "v1", "--sparse")); got != want {
		t.Errorf("sparse download checksum %s, uploaded %s", got, want)
	}
	part, _ := dataFile(t, 1<<20)
	must(t, d, "vol-upload", "--pool", "rlife", "v1", part, "--offset", "1048576", "--length", "1048576")
	got := download(t, d, "rlife", "v1", "--offset", "1048576", "--length", "1048576")
	if wantPart, _ := os.ReadFile(part); sum(got) != sum(wantPart) {
		t.Errorf("range download differs from the range uploaded (%d bytes)", len(got))
	}
	whole := download(t, d, "rlife", "v1")

	// A clone reads as its source; the source keeps libvirt's protected
	// snapshot.
	must(t, d, "vol-clone", "--pool", "rlife", "v1", "c1")
	if got := download(t, d, "rlife", "c1"); sum(got) != sum(whole) {
		t.Errorf("clone differs from its source")
	}
	snaps, err := lab.Rbd(ctx, "snap", "ls", "--format", "json", "life/v1")
	if err != nil || !regexp.MustCompile(`"name":"libvirt-\d+".*"protected":"true"`).Match(snaps) {
		t.Errorf("snapshots of the clone's source: %v %s", err, snaps)
	}
	// A second clone reuses the snapshot, which holds the image as it is.
	must(t, d, "vol-clone", "--pool", "rlife", "v1", "c2")
	if again, _ := lab.Rbd(ctx, "snap", "ls", "--format", "json", "life/v1"); strings.Count(string(again), `"name"`) != 1 {
		t.Errorf("second clone made another snapshot: %s", again)
	}

	// Resize grows; shrinking is refused as libvirt's rbd backend does.
	must(t, d, "vol-resize", "--pool", "rlife", "v1", "16M")
	if vi := must(t, d, "vol-info", "--pool", "rlife", "v1"); !strings.Contains(vi, "Capacity:       16.00 MiB") {
		t.Errorf("vol-info after resize:\n%s", vi)
	}

	// Wipe: zero and trim, and libvirt's refusal of the others.
	must(t, d, "vol-wipe", "--pool", "rlife", "c1")
	if b := download(t, d, "rlife", "c1"); len(b) != 12<<20 || !allZero(b) {
		t.Errorf("zero-wiped clone: %d bytes, not all zero", len(b))
	}
	must(t, d, "vol-wipe", "--pool", "rlife", "c2", "--algorithm", "trim")
	if b := download(t, d, "rlife", "c2", "--sparse"); len(b) != 12<<20 || !allZero(b) {
		t.Errorf("trimmed clone: %d bytes, not all zero", len(b))
	}
	if got := fails(t, d, "vol-wipe", "--pool", "rlife", "c2", "--algorithm", "dod"); got != "error: invalid argument: unsupported algorithm 2" {
		t.Errorf("dod wipe: %q", got)
	}

	// Delete: an image with snapshots needs --delete-snapshots, and a
	// snapshot with clones cannot go; the real errno is reported.
	if got := fails(t, d, "vol-delete", "--pool", "rlife", "v1"); got != "error: failed to remove volume 'life/v1': Directory not empty" {
		t.Errorf("delete with snapshots: %q", got)
	}
	if got := fails(t, d, "vol-delete", "--pool", "rlife", "v1", "--delete-snapshots"); !regexp.MustCompile(`^error: failed to unprotect snapshot 'life/v1@libvirt-\d+': Device or resource busy$`).MatchString(got) {
		t.Errorf("delete with a cloned snapshot: %q", got)
	}
	must(t, d, "vol-delete", "--pool", "rlife", "c1")
	must(t, d, "vol-delete", "--pool", "rlife", "c2")
	must(t, d, "vol-delete", "--pool", "rlife", "v1", "--delete-snapshots")
	if out, _ := lab.Rbd(ctx, "ls", "life"); len(out) != 0 {
		t.Errorf("images left: %s", out)
	}

	// An image made behind the daemon's back shows after a refresh.
	if _, err := lab.Rbd(ctx, "create", "--size", "4M", "life/behind"); err != nil {
		t.Fatal(err)
	}
	must(t, d, "pool-refresh", "rlife")
	if list := must(t, d, "vol-list", "rlife"); !strings.Contains(list, "behind") {
		t.Errorf("vol-list after refresh:\n%s", list)
	}

	// A restarted daemon brings the running pool back, as libvirt does.
	d.Kill()
	d.Start(t)
	if info := must(t, d, "pool-info", "rlife"); !strings.Contains(info, "State:          running") {
		t.Errorf("pool-info after a restart:\n%s", info)
	}
	if list := must(t, d, "vol-list", "rlife"); !strings.Contains(list, "behind") {
		t.Errorf("vol-list after a restart:\n%s", list)
	}
}
