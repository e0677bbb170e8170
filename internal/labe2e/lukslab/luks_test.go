package lukslab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// The secrets of the scenario, defined in libvirtd's secret driver, which
// libvirtd's storage driver and our daemon (as its client) both read.
const (
	secLV      = "22222222-3333-4444-5555-000000000001"
	secUsage   = "22222222-3333-4444-5555-000000000002"
	secCeph    = "22222222-3333-4444-5555-000000000003"
	secNoValue = "22222222-3333-4444-5555-000000000004"
	secMissing = "22222222-3333-4444-5555-0000000000ff"
	passLV     = "lab lv pass"
	passUsage  = "usage pass 2"
)

// timingFlake is qemu-img failing to time its key derivation, frequent
// under emulation: our daemon runs it again (README), libvirtd reports it
// after removing the LV, so its step is run again.
const timingFlake = "Unable to get accurate CPU usage"

// vshRetry is a virsh step that, on libvirtd, is run again after the
// timing failure of qemu-img; its transcript text is a plain step's.
func vshRetry(args ...string) labkit.Step {
	return labkit.Step{Check: func(t *testing.T, s *labkit.Side) string {
		a := make([]string, len(args))
		for i, x := range args {
			a[i] = s.Expand(x)
		}
		var o, e string
		var code int
		for attempt := 0; attempt < 10; attempt++ {
			if o, e, code = s.V.Virsh(a...); code == 0 || !strings.Contains(e, timingFlake) {
				break
			}
			t.Logf("%s: %s, again", s.Name, timingFlake)
		}
		return fmt.Sprintf("rc=%d\nstdout:\n%s\nstderr:\n%s", code, o, e)
	}}
}

// luksVolXML is an encrypted volume of capacity MiB; secret is the <secret>
// element's attributes.
func luksVolXML(name, capacity, secret string) string {
	return "<volume><name>" + name + "</name><capacity unit='M'>" + capacity + "</capacity>" +
		"<target><encryption format='luks'><secret " + secret + "/></encryption></target></volume>"
}

// keyFile writes a passphrase into a 0600 file of the test's.
func keyFile(t *testing.T, pass string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(pass), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// luksFacts is a check step describing an LV as the Linux tools see it: its
// size in LVM, what qemu-img info says of its format, whether cryptsetup
// takes it for LUKS, and which passphrases open a key slot.
func luksFacts(lv, pass string) labkit.Step {
	return labkit.Step{Check: func(t *testing.T, s *labkit.Side) string {
		dev := "/dev/lkvg/" + lv
		var b strings.Builder
		fmt.Fprintf(&b, "lv size %d\n", labkit.LVSize(t, "lkvg", lv))
		info, err := lab.Try("qemu-img", "info", dev)
		for _, line := range strings.Split(info, "\n") {
			if strings.HasPrefix(line, "file format:") || strings.HasPrefix(line, "encrypted:") || strings.HasPrefix(line, "virtual size:") {
				b.WriteString(line + "\n")
			}
		}
		fmt.Fprintf(&b, "qemu-img info: %v\n", err)
		_, err = lab.Try("cryptsetup", "isLuks", dev)
		fmt.Fprintf(&b, "cryptsetup isLuks: %v\n", err)
		for _, p := range []string{pass, "wrong"} {
			_, err = lab.Try("cryptsetup", "open", "--test-passphrase", "--key-file", keyFile(t, p), dev)
			fmt.Fprintf(&b, "opens with the %s passphrase: %v\n", map[bool]string{true: "secret's", false: "wrong"}[p == pass], err == nil)
		}
		return b.String()
	}}
}

// opens is a check step saying whether an LV opens with a passphrase.
func opens(lv, pass string) labkit.Step {
	return labkit.Step{Check: func(t *testing.T, s *labkit.Side) string {
		_, err := lab.Try("cryptsetup", "open", "--test-passphrase", "--key-file", keyFile(t, pass), "/dev/lkvg/"+lv)
		return fmt.Sprintf("opens with the secret's passphrase: %v\n", err == nil)
	}}
}

// isLuks is a check step saying whether cryptsetup takes an LV for LUKS.
func isLuks(lv string) labkit.Step {
	return labkit.Step{Check: func(t *testing.T, s *labkit.Side) string {
		_, err := lab.Try("cryptsetup", "isLuks", "/dev/lkvg/"+lv)
		return fmt.Sprintf("cryptsetup isLuks: %v\n", err)
	}}
}

// lvsStep lists the VG's LVs, to see that a failed create leaves none.
func lvsStep() labkit.Step {
	return labkit.Step{Check: func(t *testing.T, s *labkit.Side) string {
		return lab.Run(t, "lvs", "--noheadings", "-o", "lv_name,lv_size", "--units", "b", "--nosuffix", "lkvg")
	}}
}

// TestLUKSLogicalAgainstLibvirtd makes encrypted LVs on a real VG through
// virsh, on libvirtd 9.0's storage driver and on our daemon, each on its own
// disk under the same VG name, both reading the passphrases from libvirtd's
// secret driver; the transcripts are compared step by step, and cryptsetup
// opens what each made with the secret's passphrase and not another. Our
// daemon's debug log is then searched for the passphrases.
func TestLUKSLogicalAgainstLibvirtd(t *testing.T) {
	testkit.RequireTool(t, "qemu-img")
	testkit.RequireTool(t, "cryptsetup")
	a := labkit.StartAnchor(t)
	a.DefineSecret(t, secLV, testkit.VolumeUsage("/nowhere/lv"), false, []byte(passLV))
	// The usage of this one is the LV's path, the same on both sides.
	a.DefineSecret(t, secUsage, testkit.VolumeUsage("/dev/lkvg/byusage"), false, []byte(passUsage))
	a.DefineSecret(t, secCeph, "<usage type='ceph'><name>client.lab</name></usage>", false, []byte("cephkey"))
	a.DefineSecret(t, secNoValue, testkit.VolumeUsage("/nowhere/novalue"), false, nil)
	d := testkit.StartDaemon(t, testkit.DaemonOptions{Config: "log_level = 1\n" +
		"secret_driver_socket = \"" + a.SocketPath() + "\"\n" +
		"secret_driver_uri = \"secret:///system\"\n" +
		"secret_driver_token_file = \"" + a.SystemTokenFile() + "\"\n"})

	steps := []labkit.Step{
		labkit.Vsh("pool-define", "{DIR}/pool.xml"),
		labkit.Vsh("pool-build", "lkvg"),
		labkit.Vsh("pool-start", "lkvg"),
		// 3: 10 MiB and the header's 2 MiB, 12 MiB of extents.
		vshRetry("vol-create", "lkvg", "{DIR}/enc.xml"),
		labkit.Vsh("vol-dumpxml", "--pool", "lkvg", "enc"),
		labkit.Vsh("vol-info", "--bytes", "--pool", "lkvg", "enc"),
		luksFacts("enc", passLV),
		// 7: 5 MiB and 2, rounded up to two extents.
		vshRetry("vol-create", "lkvg", "{DIR}/byusage.xml"),
		labkit.Vsh("vol-dumpxml", "--pool", "lkvg", "byusage"),
		labkit.Vsh("vol-info", "--bytes", "--pool", "lkvg", "byusage"),
		luksFacts("byusage", passUsage),
		// 11: a copy, then what libvirt refuses or does to an encrypted LV.
		vshRetry("vol-clone", "--pool", "lkvg", "enc", "encclone"),
		labkit.Vsh("vol-dumpxml", "--pool", "lkvg", "encclone"),
		luksFacts("encclone", passLV),
		labkit.Vsh("vol-upload", "--pool", "lkvg", "enc", "{DIR}/pool.xml"),
		labkit.Vsh("vol-download", "--pool", "lkvg", "enc", "{DIR}/back"),
		labkit.Vsh("vol-resize", "--pool", "lkvg", "encclone", "20M"),
		opens("encclone", passLV),
		labkit.Vsh("vol-delete", "--pool", "lkvg", "encclone"),
		// 19: a wipe takes the header with it.
		labkit.Vsh("vol-wipe", "--pool", "lkvg", "byusage"),
		labkit.Vsh("vol-dumpxml", "--pool", "lkvg", "byusage"),
		isLuks("byusage"),
		// 22: bad secrets, and no LV left behind by them.
		labkit.Vsh("vol-create", "lkvg", "{DIR}/unknown.xml"),
		labkit.Vsh("vol-create", "lkvg", "{DIR}/unknownusage.xml"),
		labkit.Vsh("vol-create", "lkvg", "{DIR}/ceph.xml"),
		labkit.Vsh("vol-create", "lkvg", "{DIR}/novalue.xml"),
		labkit.Vsh("vol-create", "lkvg", "{DIR}/badtype.xml"),
		lvsStep(),
		// 28: what a refresh leaves of the encryption.
		labkit.Vsh("pool-refresh", "lkvg"),
		labkit.Vsh("vol-dumpxml", "--pool", "lkvg", "enc"),
		labkit.Vsh("vol-list", "lkvg", "--details"),
		labkit.Vsh("pool-destroy", "lkvg"),
		labkit.Vsh("pool-delete", "lkvg"),
		labkit.Vsh("pool-undefine", "lkvg"),
	}
	runs := labkit.RunBoth(t, a, d, steps, func(t *testing.T, s *labkit.Side) func() {
		s.Vars["DEV"] = lab.Disk(t)
		labkit.WriteSideFile(t, s, "pool.xml", `<pool type='logical'><name>lkvg</name><source><device path='{DEV}'/><name>lkvg</name><format type='lvm2'/></source><target><path>/dev/lkvg</path></target></pool>`)
		labkit.WriteSideFile(t, s, "enc.xml", luksVolXML("enc", "10", "type='passphrase' uuid='"+secLV+"'"))
		labkit.WriteSideFile(t, s, "byusage.xml", luksVolXML("byusage", "5", "type='passphrase' usage='/dev/lkvg/byusage'"))
		labkit.WriteSideFile(t, s, "unknown.xml", luksVolXML("unknown", "4", "type='passphrase' uuid='"+secMissing+"'"))
		labkit.WriteSideFile(t, s, "unknownusage.xml", luksVolXML("unknownusage", "4", "type='passphrase' usage='/dev/lkvg/nosuch'"))
		labkit.WriteSideFile(t, s, "ceph.xml", luksVolXML("ceph", "4", "type='passphrase' uuid='"+secCeph+"'"))
		labkit.WriteSideFile(t, s, "novalue.xml", luksVolXML("novalue", "4", "type='passphrase' uuid='"+secNoValue+"'"))
		labkit.WriteSideFile(t, s, "badtype.xml", luksVolXML("badtype", "4", "type='chap' uuid='"+secLV+"'"))
		t.Cleanup(func() { lab.Try("vgremove", "-f", "lkvg") })
		return func() {
			lab.Try("vgremove", "-f", "lkvg")
			lab.Try("pvremove", "-ff", "-y", s.Vars["DEV"])
			s.V.Virsh("pool-destroy", "lkvg")
			s.V.Virsh("pool-undefine", "lkvg")
		}
	})
	labkit.CompareTranscripts(t, steps, runs[0], runs[1], map[int]string{
		16: "logical volumes resize (lvresize); libvirt 9.0 has no resize for logical pools",
	})
	// Alike is not enough: both must have made LUKS that opens with the
	// secret's passphrase, and refused every bad secret.
	ours := runs[1]
	for _, i := range []int{6, 10, 13} {
		if !strings.Contains(ours[i], "cryptsetup isLuks: <nil>") || !strings.Contains(ours[i], "opens with the secret's passphrase: true") ||
			!strings.Contains(ours[i], "opens with the wrong passphrase: false") {
			t.Errorf("step %d: not LUKS with the secret's passphrase:\n%s", i, ours[i])
		}
	}
	if ours[17] != "opens with the secret's passphrase: true\n" || ours[21] == "cryptsetup isLuks: <nil>\n" {
		t.Errorf("after resize: %q; after wipe: %q", ours[17], ours[21])
	}
	for i := 22; i <= 26; i++ {
		if !strings.HasPrefix(ours[i], "rc=1") {
			t.Errorf("step %d: a bad secret accepted:\n%s", i, ours[i])
		}
	}
	if lvs := ours[27]; strings.Count(strings.TrimSpace(lvs), "\n") != 1 {
		t.Errorf("LVs after the bad secrets (enc and byusage only):\n%s", lvs)
	}
	t.Logf("our daemon's answers to the refused and failed steps:\n%s\n%s\n%s", ours[14], ours[15], strings.Join(ours[22:27], "\n"))

	logText, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), "secret value read") {
		t.Errorf("no debug line of the secret client in the log: the check below would prove nothing")
	}
	for _, p := range []string{passLV, passUsage, "cephkey"} {
		if strings.Contains(string(logText), p) {
			t.Errorf("the daemon's log holds the passphrase %q", p)
		}
	}
	if ents, _ := filepath.Glob(filepath.Join(d.Root, "run/libvirt/storage/*.secret.*")); len(ents) != 0 {
		t.Errorf("key directories left: %v", ents)
	}
}
