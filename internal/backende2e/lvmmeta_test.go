package backende2e_test

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Without device-mapper, LVM refuses to create the LVs whose creation talks to
// the kernel, even with --driverloaded n (LVM 2.03.16 on this machine):
//
//	lvcreate --driverloaded n --type thin-pool -l 100%FREE --name tp VG --yes
//	  Can't create thin-pool without using device-mapper kernel driver.  (exit 5)
//	lvconvert --driverloaded n --type thin-pool --poolmetadata VG/meta VG/data
//	  thin-pool: Required device-mapper target(s) not detected in your kernel.
//	lvcreate --driverloaded n --name th --virtualsize 100M --thinpool tp VG
//	  Can't create thin without using device-mapper kernel driver.
//	lvcreate --driverloaded n --name s -L 4096K --type snapshot --virtualsize 16384K VG
//	lvcreate --driverloaded n --name s -L 8192K -s /dev/VG/base
//	  Can't create snapshot without using device-mapper kernel driver.
//	lvremove --driverloaded n -f /dev/VG/th   (a thin LV)
//	  Cannot activate thin pool VG/tp. Failed to update pool VG/tp.
//
// (-an, -kn, --setactivationskip y, --zero n and
// global/thin_check_executable="" change none of these.) Everything else works
// in metadata: linear LVs, lvresize, lvs with thin and snapshot fields, lvremove
// of snapshots, of sparse LVs and of a whole thin pool, vgremove.
//
// So that the daemon still runs these volume kinds against real LVM, the
// lvcreate and lvremove wrappers re-run this test binary as a shim, which does
// only what LVM refuses, and does it in LVM's own metadata: extents are still
// allocated by the real lvcreate (a snapshot's COW area, a thin pool's data and
// metadata LVs), then the shim adds the stanzas LVM itself would write (a
// thin-pool segment over the hidden _tdata/_tmeta LVs, thin segments, snapshot
// segments, a "zero" virtual origin for a sparse LV) with vgcfgbackup, an edit
// and vgcfgrestore --force. lvs, vgs, pvs, lvresize and the other lvremove
// calls are the real tools. What no shim can give without the kernel is how
// full a thin LV or pool is: lvs reports data_percent empty, so thin
// allocations are 0.

// lvmShimEnv, in the environment of this test binary, makes TestMain run the
// named LVM command as the shim instead of the tests.
const lvmShimEnv = "VSE2E_LVM_SHIM"

// lvmShimCommands are the commands the shim stands in for.
var lvmShimCommands = map[string]bool{"lvcreate": true, "lvremove": true}

// lvmShimMain runs one shimmed command and returns its exit status.
func lvmShimMain(cmd string, args []string) int {
	lvm, err := exec.LookPath("lvm")
	if err == nil {
		switch cmd {
		case "lvcreate":
			err = shimLVCreate(lvm, args)
		case "lvremove":
			err = shimLVRemove(lvm, args)
		default:
			err = fmt.Errorf("no shim for %s", cmd)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "  %v\n", err)
		return 5
	}
	return 0
}

// realLVM runs an LVM command metadata-only and passes its output through.
func realLVM(lvm, cmd string, args ...string) error {
	c := exec.Command(lvm, append([]string{cmd, "--driverloaded", "n"}, args...)...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c.Run()
}

// lvArgs is what the shim reads of an lvcreate command line.
type lvArgs struct {
	name, size, extents, typ, virtualSize, thinPool, origin, vg string
}

func parseLVCreate(args []string) (lvArgs, error) {
	var a lvArgs
	for i := 0; i < len(args); i++ {
		val := func() string {
			i++
			if i < len(args) {
				return args[i]
			}
			return ""
		}
		switch args[i] {
		case "--name", "-n":
			a.name = val()
		case "-L", "--size":
			a.size = val()
		case "-l", "--extents":
			a.extents = val()
		case "--type":
			a.typ = val()
		case "--virtualsize", "-V":
			a.virtualSize = val()
		case "--thinpool", "-T":
			a.thinPool = val()
		case "-s", "--snapshot":
			a.origin = val()
		case "--yes", "-y":
		default:
			if strings.HasPrefix(args[i], "-") {
				return a, fmt.Errorf("lvm shim: unexpected lvcreate option %s", args[i])
			}
			a.vg = args[i]
		}
	}
	return a, nil
}

// shimLVCreate does the thin-pool, thin, sparse and snapshot creations LVM
// refuses without device-mapper, and passes any other lvcreate to LVM.
func shimLVCreate(lvm string, args []string) error {
	a, err := parseLVCreate(args)
	if err != nil {
		return err
	}
	switch {
	case a.typ == "thin-pool":
		// LVM's own layout: hidden NAME_tmeta and NAME_tdata LVs under a
		// thin-pool segment as long as the data LV. lvcreate reserves those
		// names, so the LVs are made under others and renamed in the edit.
		meta, data := a.name+"_vse2emeta", a.name+"_vse2edata"
		if err := realLVM(lvm, "lvcreate", "-l", "1", "-n", meta, a.vg, "--yes"); err != nil {
			return err
		}
		if err := realLVM(lvm, "lvcreate", "-l", a.extents, "-n", data, a.vg, "--yes"); err != nil {
			return err
		}
		return editVG(lvm, a.vg, func(m string) (string, error) {
			m = renameLV(renameLV(m, meta, a.name+"_tmeta"), data, a.name+"_tdata")
			data, err := lvExtents(m, a.name+"_tdata")
			if err != nil {
				return "", err
			}
			m = hideLV(hideLV(m, a.name+"_tmeta"), a.name+"_tdata")
			return addLV(m, lvStanza(a.name, true, data, fmt.Sprintf(
				"type = \"thin-pool\"\nmetadata = \"%s_tmeta\"\npool = \"%s_tdata\"\ntransaction_id = 0\nchunk_size = 128\ndiscards = \"passdown\"\nzero_new_blocks = 1", a.name, a.name)))
		})
	case a.thinPool != "":
		return editVG(lvm, a.vg, func(m string) (string, error) {
			if _, _, ok := lvBlock(m, a.name); ok {
				return "", fmt.Errorf("Logical Volume %q already exists in volume group %q", a.name, a.vg)
			}
			n, err := sizeExtents(m, a.virtualSize)
			if err != nil {
				return "", err
			}
			m, tid, err := bumpTransaction(m, a.thinPool)
			if err != nil {
				return "", err
			}
			return addLV(m, lvStanza(a.name, true, n, fmt.Sprintf(
				"type = \"thin\"\nthin_pool = \"%s\"\ntransaction_id = %d\ndevice_id = %d", a.thinPool, tid, nextDeviceID(m))))
		})
	case a.typ == "snapshot" && a.virtualSize != "":
		// A sparse LV: its COW area over a hidden "zero" origin of the
		// virtual size, named as LVM names it.
		if err := realLVM(lvm, "lvcreate", "-L", a.size, "-n", a.name, a.vg, "--yes"); err != nil {
			return err
		}
		return editVG(lvm, a.vg, func(m string) (string, error) {
			n, err := sizeExtents(m, a.virtualSize)
			if err != nil {
				return "", err
			}
			vorigin := a.name + "_vorigin"
			m, err = addLV(m, lvStanza(vorigin, false, n, "type = \"zero\""))
			if err != nil {
				return "", err
			}
			return addSnapshot(m, vorigin, a.name, n)
		})
	case a.origin != "":
		vg, origin, ok := strings.Cut(strings.TrimPrefix(a.origin, "/dev/"), "/")
		if !ok {
			return fmt.Errorf("lvm shim: snapshot origin %q is not /dev/VG/LV", a.origin)
		}
		if err := realLVM(lvm, "lvcreate", "-L", a.size, "-n", a.name, vg, "--yes"); err != nil {
			return err
		}
		return editVG(lvm, vg, func(m string) (string, error) {
			n, err := lvExtents(m, origin)
			if err != nil {
				return "", err
			}
			return addSnapshot(m, origin, a.name, n)
		})
	}
	return realLVM(lvm, "lvcreate", args...)
}

// shimLVRemove removes a thin LV from its pool's metadata and passes any
// other lvremove to LVM.
func shimLVRemove(lvm string, args []string) error {
	target := args[len(args)-1]
	vg, lv, ok := strings.Cut(strings.TrimPrefix(target, "/dev/"), "/")
	if !ok {
		return realLVM(lvm, "lvremove", args...)
	}
	meta, err := backupVG(lvm, vg)
	if err != nil {
		return realLVM(lvm, "lvremove", args...)
	}
	start, end, ok := lvBlock(meta, lv)
	pool := regexp.MustCompile(`thin_pool = "([^"]+)"`).FindStringSubmatch(meta[start:end])
	if !ok || pool == nil {
		return realLVM(lvm, "lvremove", args...)
	}
	return editVG(lvm, vg, func(m string) (string, error) {
		start, end, _ := lvBlock(m, lv)
		m, _, err := bumpTransaction(m[:start]+m[end:], pool[1])
		return m, err
	})
}

func backupVG(lvm, vg string) (string, error) {
	dir, err := os.MkdirTemp("", "vse2e-vg")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, vg+".vg")
	if out, err := exec.Command(lvm, "vgcfgbackup", "--driverloaded", "n", "-f", f, vg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("lvm shim: vgcfgbackup %s: %v: %s", vg, err, out)
	}
	b, err := os.ReadFile(f)
	return string(b), err
}

// editVG rewrites the VG's metadata through vgcfgbackup and vgcfgrestore;
// --force is what vgcfgrestore asks for before it restores thin LVs.
func editVG(lvm, vg string, edit func(string) (string, error)) error {
	meta, err := backupVG(lvm, vg)
	if err != nil {
		return err
	}
	meta, err = edit(meta)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "vse2e-vg")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(meta); err != nil {
		return err
	}
	f.Close()
	if out, err := exec.Command(lvm, "vgcfgrestore", "--driverloaded", "n", "--force", "-f", f.Name(), vg).CombinedOutput(); err != nil {
		return fmt.Errorf("lvm shim: vgcfgrestore %s: %v: %s", vg, err, out)
	}
	return nil
}

// lvBlock finds an LV's stanza in VG metadata, as vgcfgbackup indents it.
func lvBlock(meta, lv string) (start, end int, ok bool) {
	head := "\n\t\t" + lv + " {\n"
	i := strings.Index(meta, head)
	if i < 0 {
		return 0, 0, false
	}
	j := strings.Index(meta[i+len(head):], "\n\t\t}\n")
	if j < 0 {
		return 0, 0, false
	}
	return i, i + len(head) + j + len("\n\t\t}"), true
}

var extentCount = regexp.MustCompile(`extent_count = (\d+)`)

// lvExtents sums the extents of an LV's segments.
func lvExtents(meta, lv string) (uint64, error) {
	start, end, ok := lvBlock(meta, lv)
	if !ok {
		return 0, fmt.Errorf("Failed to find logical volume %q", lv)
	}
	var n uint64
	for _, m := range extentCount.FindAllStringSubmatch(meta[start:end], -1) {
		c, _ := strconv.ParseUint(m[1], 10, 64)
		n += c
	}
	return n, nil
}

// sizeExtents converts an lvcreate size ("16384K") to whole extents of the VG.
func sizeExtents(meta, size string) (uint64, error) {
	m := regexp.MustCompile(`(?m)^\textent_size = (\d+)`).FindStringSubmatch(meta)
	k, err := strconv.ParseUint(strings.TrimSuffix(size, "K"), 10, 64)
	if m == nil || err != nil || !strings.HasSuffix(size, "K") {
		return 0, fmt.Errorf("lvm shim: cannot size %q in extents", size)
	}
	sectors, _ := strconv.ParseUint(m[1], 10, 64)
	ext := sectors * 512 / 1024
	return (k + ext - 1) / ext, nil
}

func renameLV(meta, from, to string) string {
	return strings.Replace(meta, "\n\t\t"+from+" {\n", "\n\t\t"+to+" {\n", 1)
}

func hideLV(meta, lv string) string {
	start, end, ok := lvBlock(meta, lv)
	if !ok {
		return meta
	}
	return meta[:start] + strings.Replace(meta[start:end], `, "VISIBLE"]`, `]`, 1) + meta[end:]
}

// bumpTransaction increments a thin pool's transaction_id, as each thin LV
// creation or removal does, and returns the new id.
func bumpTransaction(meta, pool string) (string, uint64, error) {
	start, end, ok := lvBlock(meta, pool)
	re := regexp.MustCompile(`transaction_id = (\d+)`)
	if !ok {
		return "", 0, fmt.Errorf("Failed to find thin pool %q", pool)
	}
	m := re.FindStringSubmatch(meta[start:end])
	if m == nil {
		return "", 0, fmt.Errorf("lvm shim: %q is not a thin pool", pool)
	}
	tid, _ := strconv.ParseUint(m[1], 10, 64)
	tid++
	block := re.ReplaceAllString(meta[start:end], "transaction_id = "+strconv.FormatUint(tid, 10))
	// Thin LVs record the pool's transaction at their creation; only the
	// pool's own line changes.
	return meta[:start] + block + meta[end:], tid, nil
}

func nextDeviceID(meta string) uint64 {
	var id uint64
	for _, m := range regexp.MustCompile(`device_id = (\d+)`).FindAllStringSubmatch(meta, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		id = max(id, n)
	}
	return id + 1
}

// addSnapshot adds the hidden snapshotN LV tying a COW LV to its origin.
func addSnapshot(meta, origin, cow string, extents uint64) (string, error) {
	n := 0
	for strings.Contains(meta, fmt.Sprintf("\n\t\tsnapshot%d {\n", n)) {
		n++
	}
	return addLV(meta, lvStanza(fmt.Sprintf("snapshot%d", n), false, extents, fmt.Sprintf(
		"type = \"snapshot\"\nchunk_size = 8\norigin = \"%s\"\ncow_store = \"%s\"", origin, cow)))
}

// lvStanza is one LV of one segment in vgcfgbackup's layout.
func lvStanza(name string, visible bool, extents uint64, segment string) string {
	status := `["READ", "WRITE"]`
	if visible {
		status = `["READ", "WRITE", "VISIBLE"]`
	}
	seg := strings.ReplaceAll(segment, "\n", "\n\t\t\t\t")
	return fmt.Sprintf("\n\t\t%s {\n\t\t\tid = %q\n\t\t\tstatus = %s\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = %d\n\n\t\t\t\t%s\n\t\t\t}\n\t\t}\n",
		name, lvmID(), status, extents, seg)
}

// addLV appends a stanza to the logical_volumes section.
func addLV(meta, stanza string) (string, error) {
	const head = "\n\tlogical_volumes {\n"
	i := strings.Index(meta, head)
	if i < 0 {
		return "", fmt.Errorf("lvm shim: no logical_volumes section")
	}
	j := strings.Index(meta[i:], "\n\t}\n")
	if j < 0 {
		return "", fmt.Errorf("lvm shim: unterminated logical_volumes section")
	}
	at := i + j
	return meta[:at] + "\n" + strings.TrimSuffix(stanza, "\n") + meta[at:], nil
}

// lvmID is a random LVM UUID (6-4-4-4-4-4-6 alphanumerics).
func lvmID() string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b strings.Builder
	for i, n := range []int{6, 4, 4, 4, 4, 4, 6} {
		if i > 0 {
			b.WriteByte('-')
		}
		for range n {
			k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(chars))))
			b.WriteByte(chars[k.Int64()])
		}
	}
	return b.String()
}
