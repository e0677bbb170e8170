package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestVirshCommands walks every pool-* and vol-* command of semantics §5 that
// applies to dir pools, on our daemon and, as a check of the expectations
// themselves, on libvirtd.
func TestVirshCommands(t *testing.T) {
	t.Run("virtstoraged", func(t *testing.T) {
		t.Parallel()
		d := startDaemon(t, testkit.DaemonOptions{})
		virshScenario(t, d, poolBase(t, "o"))
	})
	t.Run("libvirtd", func(t *testing.T) {
		t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
		a := testkit.StartAnchor(t)
		a.CleanupPools("e2e")
		t.Cleanup(func() { a.CleanupPools("e2e") })
		virshScenario(t, a, poolBase(t, "a"))
	})
}

func virshScenario(t *testing.T, tg target, base string) {
	p1 := filepath.Join(base, "p1")
	// pool lifecycle
	wantOut(t, tg, "Pool e2e1 defined\n\n", "pool-define-as", "e2e1", "dir", "--target", p1)
	wantContains(t, tg, []string{"pool-list", "--all"}, " e2e1   inactive   no")
	wantContains(t, tg, []string{"pool-list", "--inactive"}, " e2e1   inactive   no")
	if out := ok(t, tg, "pool-list"); strings.Contains(out, "e2e1") {
		t.Errorf("pool-list shows the inactive pool:\n%s", out)
	}
	wantOut(t, tg, "Pool e2e1 built\n\n", "pool-build", "e2e1")
	if st, err := os.Stat(p1); err != nil || !st.IsDir() || st.Mode().Perm() != 0o711 {
		t.Errorf("pool-build: %s: %v %v, want a directory with mode 0711", p1, st, err)
	}
	wantOut(t, tg, "Pool e2e1 started\n\n", "pool-start", "e2e1")
	info := wantContains(t, tg, []string{"pool-info", "e2e1"},
		"Name:           e2e1\n", "State:          running\n", "Persistent:     yes\n",
		"Autostart:      no\n", "Capacity:", "Allocation:", "Available:")
	uuid := strings.TrimSpace(ok(t, tg, "pool-uuid", "e2e1"))
	if !uuidRE.MatchString(uuid) || !strings.Contains(info, "UUID:           "+uuid+"\n") {
		t.Errorf("pool-uuid %q does not match pool-info:\n%s", uuid, info)
	}
	wantOut(t, tg, "e2e1\n\n", "pool-name", uuid)
	wantOut(t, tg, uuid+"\n\n", "pool-list", "--uuid")
	wantContains(t, tg, []string{"pool-list", "--name"}, "e2e1")
	wantContains(t, tg, []string{"pool-list", "--type", "dir"}, " e2e1   active   no")
	wantContains(t, tg, []string{"pool-list", "--persistent"}, " e2e1   active   no")
	if out := ok(t, tg, "pool-list", "--transient", "--name"); strings.Contains(out, "e2e1") {
		t.Errorf("pool-list --transient shows a persistent pool:\n%s", out)
	}
	if out := ok(t, tg, "pool-list", "--type", "logical", "--name"); strings.Contains(out, "e2e1") {
		t.Errorf("pool-list --type logical shows a dir pool:\n%s", out)
	}
	wantContains(t, tg, []string{"pool-list", "--details"},
		" Name   State     Autostart   Persistent   Capacity", " e2e1   running   no          yes   ")
	wantContains(t, tg, []string{"pool-dumpxml", "e2e1"}, "<pool type='dir'>\n  <name>e2e1</name>\n  <uuid>"+uuid+"</uuid>\n",
		"  <source>\n  </source>\n", "<path>"+p1+"</path>", "<mode>0711</mode>")
	wantContains(t, tg, []string{"pool-dumpxml", "--inactive", "e2e1"}, "<pool type='dir'>\n  <name>e2e1</name>\n")
	wantOut(t, tg, "Pool e2e1 marked as autostarted\n\n", "pool-autostart", "e2e1")
	wantContains(t, tg, []string{"pool-list", "--autostart"}, " e2e1   active   yes")
	wantContains(t, tg, []string{"pool-info", "e2e1"}, "Autostart:      yes\n")
	wantOut(t, tg, "Pool e2e1 unmarked as autostarted\n\n", "pool-autostart", "e2e1", "--disable")
	if out := ok(t, tg, "pool-list", "--autostart", "--name"); strings.Contains(out, "e2e1") {
		t.Errorf("pool-list --autostart still shows the pool:\n%s", out)
	}
	wantOut(t, tg, "Pool e2e1 refreshed\n\n", "pool-refresh", "e2e1")
	wantContains(t, tg, []string{"pool-capabilities"}, "<storagepoolCapabilities>\n  <pool type='dir' supported='yes'>\n    <volOptions>\n      <defaultFormat type='raw'/>")
	wantErr(t, tg, "error: Failed to find any dir pool sources\nerror: this function is not supported by the connection driver: pool type 'dir' does not support source discovery\n",
		"find-storage-pool-sources-as", "dir")

	// volumes
	wantOut(t, tg, "Vol sparse.img created\n\n", "vol-create-as", "e2e1", "sparse.img", "10M", "--allocation", "0")
	if size, alloc := fileBlocks(t, filepath.Join(p1, "sparse.img")); size != 10<<20 || alloc > 64<<10 {
		t.Errorf("sparse.img: size %d alloc %d, want 10 MiB and ~0", size, alloc)
	}
	wantOut(t, tg, "Vol full.img created\n\n", "vol-create-as", "e2e1", "full.img", "10M")
	if size, alloc := fileBlocks(t, filepath.Join(p1, "full.img")); size != 10<<20 || alloc < 10<<20 {
		t.Errorf("full.img: size %d alloc %d, want fully allocated 10 MiB", size, alloc)
	}
	wantOut(t, tg, "Vol base.qcow2 created\n\n", "vol-create-as", "e2e1", "base.qcow2", "10M", "--format", "qcow2")
	wantOut(t, tg, "Vol ovl.qcow2 created\n\n", "vol-create-as", "e2e1", "ovl.qcow2", "10M", "--format", "qcow2",
		"--backing-vol", "base.qcow2", "--backing-vol-format", "qcow2")
	wantContains(t, tg, []string{"vol-dumpxml", "ovl.qcow2", "--pool", "e2e1"},
		"<format type='qcow2'/>", "<backingStore>\n    <path>"+filepath.Join(p1, "base.qcow2")+"</path>\n    <format type='qcow2'/>")
	if out, err := exec.Command("qemu-img", "info", filepath.Join(p1, "ovl.qcow2")).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "file format: qcow2") || !strings.Contains(string(out), "backing file: "+filepath.Join(p1, "base.qcow2")) {
		t.Errorf("qemu-img info ovl.qcow2: %v\n%s", err, out)
	}
	wantOut(t, tg, "Vol pm.qcow2 created\n\n", "vol-create-as", "e2e1", "pm.qcow2", "10M", "--format", "qcow2", "--prealloc-metadata")
	wantErr(t, tg, "error: Failed to create vol raw.pm\nerror: unsupported configuration: metadata preallocation is not supported for raw volumes\n",
		"vol-create-as", "e2e1", "raw.pm", "1M", "--prealloc-metadata")
	volXML := filepath.Join(base, "vol.xml")
	writeFile(t, volXML, "<volume><name>fromxml.img</name><capacity unit='M'>1</capacity></volume>\n")
	wantOut(t, tg, "Vol fromxml.img created from "+volXML+"\n\n", "vol-create", "e2e1", volXML)
	writeFile(t, volXML, "<volume><name>from.img</name><capacity unit='M'>1</capacity></volume>\n")
	wantOut(t, tg, "Vol from.img created from input vol full.img\n\n", "vol-create-from", "e2e1", volXML, "full.img", "--inputpool", "e2e1")
	wantErr(t, tg, "error: failed to get vol 'full.img', specifying --inputpool might help\nerror: Storage volume not found: no storage vol with matching path 'full.img'\n",
		"vol-create-from", "e2e1", volXML, "full.img")
	wantOut(t, tg, "Vol clone.img cloned from full.img\n\n", "vol-clone", "full.img", "clone.img", "--pool", "e2e1")
	sameFile(t, filepath.Join(p1, "full.img"), filepath.Join(p1, "clone.img"))
	if out, errOut, code := tg.Virsh("vol-clone", "--reflink", "full.img", "rl.img", "--pool", "e2e1"); code == 0 {
		wantOut(t, tg, "", "vol-clone", "--reflink", "full.img", "rl.img", "--pool", "e2e1") // unreachable on ext4
		sameFile(t, filepath.Join(p1, "full.img"), filepath.Join(p1, "rl.img"))
		ok(t, tg, "vol-delete", "rl.img", "--pool", "e2e1")
		_ = out
	} else if want := "error: Failed to clone vol from full.img\nerror: failed to clone files from '" + filepath.Join(p1, "full.img") + "': Operation not supported\n"; errOut != want {
		t.Errorf("vol-clone --reflink on a filesystem without reflink:\n got %q\nwant %q", errOut, want)
	}
	wantContains(t, tg, []string{"vol-list", "e2e1"}, " Name          Path\n",
		" sparse.img    "+filepath.Join(p1, "sparse.img")+"\n", " base.qcow2    "+filepath.Join(p1, "base.qcow2")+"\n")
	wantContains(t, tg, []string{"vol-list", "e2e1", "--details"}, " Name          Path", "Type   Capacity    Allocation\n",
		" full.img      "+filepath.Join(p1, "full.img")+"      file   10.00 MiB   10.00 MiB\n",
		" sparse.img    "+filepath.Join(p1, "sparse.img")+"    file   10.00 MiB   0.00 B\n")
	wantOut(t, tg, "Name:           sparse.img\nType:           file\nCapacity:       10.00 MiB\nAllocation:     0.00 B\n\n", "vol-info", "sparse.img", "--pool", "e2e1")
	wantOut(t, tg, "Name:           full.img\nType:           file\nCapacity:       10485760 bytes\nAllocation:     10485760 bytes\n\n", "vol-info", "--bytes", "full.img", "--pool", "e2e1")
	wantOut(t, tg, "Name:           full.img\nType:           file\nCapacity:       10.00 MiB\nPhysical:       10.00 MiB\n\n", "vol-info", "--physical", "full.img", "--pool", "e2e1")
	sp := filepath.Join(p1, "sparse.img")
	wantContains(t, tg, []string{"vol-dumpxml", "sparse.img", "--pool", "e2e1"}, "<volume type='file'>\n  <name>sparse.img</name>\n  <key>"+sp+"</key>\n  <capacity unit='bytes'>10485760</capacity>\n  <allocation unit='bytes'>0</allocation>\n  <physical unit='bytes'>10485760</physical>\n  <target>\n    <path>"+sp+"</path>\n    <format type='raw'/>\n    <permissions>\n      <mode>0600</mode>")
	wantOut(t, tg, sp+"\n\n", "vol-path", "sparse.img", "--pool", "e2e1")
	wantOut(t, tg, sp+"\n\n", "vol-key", "sparse.img", "--pool", "e2e1")
	wantOut(t, tg, "sparse.img\n\n", "vol-name", sp)
	wantOut(t, tg, "e2e1\n\n", "vol-pool", sp)
	wantOut(t, tg, uuid+"\n\n", "vol-pool", "--uuid", sp)

	// resize
	wantOut(t, tg, "Size of volume 'sparse.img' successfully changed to 20M\n\n", "vol-resize", "sparse.img", "20M", "--pool", "e2e1")
	wantOut(t, tg, "Size of volume 'sparse.img' successfully changed by +1M\n\n", "vol-resize", "sparse.img", "+1M", "--delta", "--pool", "e2e1")
	if size, _ := fileBlocks(t, sp); size != 21<<20 {
		t.Errorf("after resize: size %d, want 21 MiB", size)
	}
	wantErr(t, tg, "error: Failed to change size of volume 'sparse.img' to 5M\nerror: invalid argument: Can't shrink capacity below current capacity unless shrink flag explicitly specified\n",
		"vol-resize", "sparse.img", "5M", "--pool", "e2e1")
	wantErr(t, tg, "error: Failed to change size of volume 'full.img' to 5M\nerror: invalid argument: can't shrink capacity below existing allocation\n",
		"vol-resize", "full.img", "5M", "--shrink", "--pool", "e2e1")
	wantOut(t, tg, "Size of volume 'sparse.img' successfully changed to 10M\n\n", "vol-resize", "sparse.img", "10M", "--shrink", "--pool", "e2e1")
	wantOut(t, tg, "Size of volume 'fromxml.img' successfully changed to 2M\n\n", "vol-resize", "fromxml.img", "2M", "--allocate", "--pool", "e2e1")
	if size, alloc := fileBlocks(t, filepath.Join(p1, "fromxml.img")); size != 2<<20 || alloc < 2<<20 {
		t.Errorf("after resize --allocate: size %d alloc %d, want 2 MiB allocated", size, alloc)
	}
	wantErr(t, tg, "error: negative size requires --shrink\n", "vol-resize", "sparse.img", "-1M", "--pool", "e2e1")

	// wipe
	writeFile(t, filepath.Join(p1, "clone.img"), strings.Repeat("x", 4096))
	ok(t, tg, "pool-refresh", "e2e1")
	wantOut(t, tg, "Vol clone.img wiped\n\n", "vol-wipe", "clone.img", "--pool", "e2e1")
	if b, err := os.ReadFile(filepath.Join(p1, "clone.img")); err != nil || bytes.Count(b, []byte{0}) != len(b) || len(b) != 4096 {
		t.Errorf("after vol-wipe: %d bytes (%v), want 4096 zero bytes", len(b), err)
	}
	if _, err := exec.LookPath("scrub"); err == nil {
		wantOut(t, tg, "Vol fromxml.img wiped\n\n", "vol-wipe", "fromxml.img", "--algorithm", "nnsa", "--pool", "e2e1")
	}
	wantErr(t, tg, "error: Unsupported algorithm 'bogus'\n", "vol-wipe", "fromxml.img", "--algorithm", "bogus", "--pool", "e2e1")

	// upload / download
	uploadDownload(t, tg, base, p1)

	// events
	poolEvents(t, tg, base)

	// delete volumes, destroy, delete and undefine the pool
	for _, v := range []string{"sparse.img", "full.img", "ovl.qcow2", "base.qcow2", "pm.qcow2", "fromxml.img", "from.img", "clone.img", "up.img"} {
		wantOut(t, tg, "Vol "+v+" deleted\n\n", "vol-delete", v, "--pool", "e2e1")
	}
	if got := listDir(t, p1); got != "" {
		t.Errorf("after deleting every volume the pool directory holds %q", got)
	}
	wantOut(t, tg, "Pool e2e1 destroyed\n\n", "pool-destroy", "e2e1")
	wantOut(t, tg, "Pool e2e1 deleted\n\n", "pool-delete", "e2e1")
	if _, err := os.Stat(p1); !os.IsNotExist(err) {
		t.Errorf("pool-delete left %s: %v", p1, err)
	}
	wantOut(t, tg, "Pool e2e1 has been undefined\n\n", "pool-undefine", "e2e1")
	if out := ok(t, tg, "pool-list", "--all", "--name"); strings.Contains(out, "e2e1") {
		t.Errorf("undefined pool still listed:\n%s", out)
	}

	// transient pools: create-as and create from a file
	wantOut(t, tg, "Pool e2e2 created\n\n", "pool-create-as", "e2e2", "dir", "--target", filepath.Join(base, "p2"), "--build")
	wantContains(t, tg, []string{"pool-list", "--transient"}, " e2e2   active   no")
	wantContains(t, tg, []string{"pool-info", "e2e2"}, "Persistent:     no\n")
	wantErr(t, tg, "error: failed to mark pool e2e2 as autostarted\nerror: internal error: pool has no config file\n", "pool-autostart", "e2e2")
	wantOut(t, tg, "Pool e2e2 destroyed\n\n", "pool-destroy", "e2e2")
	if out := ok(t, tg, "pool-list", "--all", "--name"); strings.Contains(out, "e2e2") {
		t.Errorf("destroyed transient pool still listed:\n%s", out)
	}
	poolXML := filepath.Join(base, "pool.xml")
	p3 := filepath.Join(base, "p3")
	writeFile(t, poolXML, "<pool type='dir'><name>e2e3</name><target><path>"+p3+"</path></target></pool>\n")
	wantErr(t, tg, "error: Failed to create pool from "+poolXML+"\nerror: cannot open directory '"+p3+"': No such file or directory\n", "pool-create", poolXML)
	wantOut(t, tg, "Pool e2e3 created from "+poolXML+"\n\n", "pool-create", poolXML, "--build")
	wantOut(t, tg, "Pool e2e3 destroyed\n\n", "pool-destroy", "e2e3")
	wantOut(t, tg, "Pool e2e3 defined from "+poolXML+"\n\n", "pool-define", poolXML)
	wantOut(t, tg, "Pool e2e3 started\n\n", "pool-start", "e2e3")
	wantErr(t, tg, "error: Failed to undefine pool e2e3\nerror: Requested operation is not valid: storage pool 'e2e3' is still active\n", "pool-undefine", "e2e3")
	wantOut(t, tg, "Pool e2e3 destroyed\n\n", "pool-destroy", "e2e3")
	wantOut(t, tg, "Pool e2e3 has been undefined\n\n", "pool-undefine", "e2e3")
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	if out, err := exec.Command("cmp", a, b).CombinedOutput(); err != nil {
		t.Errorf("cmp %s %s: %v %s", a, b, err, out)
	}
}

// holeyFile writes 3 MiB: 1 MiB of data, a 1 MiB hole, 1 MiB of data.
func holeyFile(t *testing.T, path string) []byte {
	t.Helper()
	data := make([]byte, 3<<20)
	for i := range 1 << 20 {
		data[i] = byte(i*7 + 1)
		data[2<<20+i] = byte(i*13 + 5)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data[:1<<20], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data[2<<20:], 2<<20); err != nil {
		t.Fatal(err)
	}
	return data
}

func uploadDownload(t *testing.T, tg target, base, p1 string) {
	t.Helper()
	src := filepath.Join(base, "src.bin")
	data := holeyFile(t, src)
	wantOut(t, tg, "Vol up.img created\n\n", "vol-create-as", "e2e1", "up.img", "3M", "--allocation", "0")
	vol := filepath.Join(p1, "up.img")

	wantOut(t, tg, "\n", "vol-upload", "up.img", src, "--pool", "e2e1", "--sparse")
	sameFile(t, src, vol)
	if _, alloc := fileBlocks(t, vol); alloc > 2<<20+64<<10 {
		t.Errorf("sparse upload: the volume has %d bytes allocated, want the 1 MiB hole kept", alloc)
	}
	down := filepath.Join(base, "down.bin")
	wantOut(t, tg, "\n", "vol-download", "up.img", down, "--pool", "e2e1")
	sameFile(t, src, down)
	downSparse := filepath.Join(base, "down-sparse.bin")
	wantOut(t, tg, "\n", "vol-download", "up.img", downSparse, "--pool", "e2e1", "--sparse")
	sameFile(t, src, downSparse)
	if size, alloc := fileBlocks(t, downSparse); size != 3<<20 || alloc > 2<<20+64<<10 {
		t.Errorf("sparse download: size %d alloc %d, want 3 MiB with a 1 MiB hole", size, alloc)
	}
	part := filepath.Join(base, "part.bin")
	wantOut(t, tg, "\n", "vol-download", "up.img", part, "--pool", "e2e1", "--offset", "1048000", "--length", "5000")
	if got, err := os.ReadFile(part); err != nil || !bytes.Equal(got, data[1048000:1053000]) {
		t.Errorf("download --offset 1048000 --length 5000: %d bytes (%v), want the slice of the volume", len(got), err)
	}
	small := filepath.Join(base, "small.bin")
	writeFile(t, small, "0123456789")
	wantOut(t, tg, "\n", "vol-upload", "up.img", small, "--pool", "e2e1", "--offset", "4096", "--length", "10")
	got, err := os.ReadFile(vol)
	want := append(append(append([]byte{}, data[:4096]...), "0123456789"...), data[4106:]...)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("upload --offset 4096 --length 10: the volume does not hold the data at the offset (%v)", err)
	}
	wantErr(t, tg, "error: Numeric value '1M' for <offset> option is malformed or out of range\n",
		"vol-download", "up.img", part, "--pool", "e2e1", "--offset", "1M")
}

// poolEvents runs pool-event in the background while another virsh causes the event.
func poolEvents(t *testing.T, tg target, base string) {
	t.Helper()
	type result struct {
		out, errOut string
		code        int
	}
	watch := func(args ...string) chan result {
		ch := make(chan result, 1)
		go func() {
			o, e, c := tg.Virsh(args...)
			ch <- result{o, e, c}
		}()
		// let it register before the event happens: as long as two whole virsh
		// runs take on this machine now, so that load does not lose events
		t0 := time.Now()
		tg.Virsh("uri")
		time.Sleep(max(500*time.Millisecond, 2*time.Since(t0)))
		return ch
	}
	check := func(ch chan result, want string) {
		t.Helper()
		select {
		case r := <-ch:
			if r.code != 0 || r.out != want {
				t.Errorf("pool-event: rc=%d stdout=%q stderr=%q, want %q", r.code, r.out, r.errOut, want)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("pool-event did not return")
		}
	}
	ch := watch("pool-event", "--event", "lifecycle", "--timeout", "20")
	ok(t, tg, "pool-define-as", "e2ev", "dir", "--target", filepath.Join(base, "pv"))
	check(ch, "event 'lifecycle' for storage pool e2ev: Defined\nevents received: 1\n\n")
	ch = watch("pool-event", "--event", "lifecycle", "--timeout", "20")
	ok(t, tg, "pool-build", "e2ev")
	check(ch, "event 'lifecycle' for storage pool e2ev: Created\nevents received: 1\n\n")
	ch = watch("pool-event", "--event", "lifecycle", "--timeout", "20")
	ok(t, tg, "pool-start", "e2ev")
	check(ch, "event 'lifecycle' for storage pool e2ev: Started\nevents received: 1\n\n")
	ch = watch("pool-event", "e2ev", "--event", "refresh", "--timeout", "20")
	ok(t, tg, "pool-refresh", "e2ev")
	check(ch, "event 'refresh' for storage pool e2ev\nevents received: 1\n\n")
	// closing an upload stream refreshes the pool in the background
	ok(t, tg, "vol-create-as", "e2ev", "ev.img", "1M")
	up := filepath.Join(base, "ev.bin")
	writeFile(t, up, "event")
	ch = watch("pool-event", "e2ev", "--event", "refresh", "--timeout", "20")
	ok(t, tg, "vol-upload", "ev.img", up, "--pool", "e2ev")
	check(ch, "event 'refresh' for storage pool e2ev\nevents received: 1\n\n")
	ok(t, tg, "vol-delete", "ev.img", "--pool", "e2ev")
	ch = watch("pool-event", "--event", "lifecycle", "--loop", "--timeout", "4")
	ok(t, tg, "pool-destroy", "e2ev")
	ok(t, tg, "pool-delete", "e2ev")
	ok(t, tg, "pool-undefine", "e2ev")
	check(ch, fmt.Sprintf("event 'lifecycle' for storage pool e2ev: Stopped\nevent 'lifecycle' for storage pool e2ev: Deleted\nevent 'lifecycle' for storage pool e2ev: Undefined\nevent loop timed out\nevents received: %d\n\n", 3))
}
