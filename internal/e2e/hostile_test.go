package e2e_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// treeOf lists every path under dir, for before/after comparisons.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var paths []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			paths = append(paths, strings.TrimPrefix(p, dir)+" "+info.Mode().String())
		}
		return nil
	})
	sort.Strings(paths)
	return strings.Join(paths, "\n")
}

// withTimeout runs a go-libvirt call that a daemon dropping the connection
// could leave hanging.
func withTimeout(t *testing.T, what string, f func() error) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(20 * time.Second):
		t.Errorf("%s: no answer within 20s", what)
		return nil
	}
}

// TestHostileInput feeds bad names, XML and sizes through virsh and go-libvirt:
// each gets a clear error, nothing on disk changes, the daemon keeps serving.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{})
	base := poolBase(t, "h")
	ok(t, d, "pool-create-as", "e2eh", "dir", "--target", filepath.Join(base, "p"), "--build")
	ok(t, d, "vol-create-as", "e2eh", "u.img", "1M")
	writeFile(t, filepath.Join(base, "ten"), "0123456789")
	before := treeOf(t, base)
	beforeStorage := treeOf(t, d.StorageDir())

	// names (libvirt 9.0's messages)
	wantErr(t, d, "error: Failed to define pool e2e/x\nerror: XML error: name e2e/x cannot contain '/'\n",
		"pool-define-as", "e2e/x", "dir", "--target", filepath.Join(base, "x"))
	// libvirt says "invalid char in name: \n"; any XML error naming the control character is as clear
	wantErrContains(t, d, "error: Failed to define pool e2e\nq\nerror: ", "pool-define-as", "e2e\nq", "dir", "--target", filepath.Join(base, "q"))
	wantErr(t, d, "error: Failed to create vol a/b\nerror: Requested operation is not valid: volume name 'a/b' cannot contain '/'\n",
		"vol-create-as", "e2eh", "a/b", "1M")
	wantErr(t, d, "error: Failed to create vol ../esc.img\nerror: Requested operation is not valid: volume name '../esc.img' cannot contain '/'\n",
		"vol-create-as", "e2eh", "../esc.img", "1M")
	// libvirt 9.0 answers "volume target path 'P/..' already exists" for these;
	// naming the bad name is clearer, so only the failure and its class are checked
	for _, name := range []string{"..", "."} {
		wantErrContains(t, d, "error: Failed to create vol "+name+"\nerror: Requested operation is not valid: ", "vol-create-as", "e2eh", name, "1M")
	}

	// XML
	for name, xml := range map[string]string{
		"garbage.xml":   "<<<not xml",
		"binary.xml":    "\x00\x01\x02\xff\xfe",
		"truncated.xml": "<volume><name>t.img</name><capacity>1024",
		"deep.xml":      strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000),
	} {
		p := filepath.Join(t.TempDir(), name)
		writeFile(t, p, xml)
		wantErrContains(t, d, "error: Failed to create vol from "+p+"\nerror: ", "vol-create", "e2eh", p)
	}
	wantErrContains(t, d, "error: Malformed size 100E\n", "vol-create-as", "e2eh", "big.img", "100E")
	ofXML := filepath.Join(t.TempDir(), "of.xml")
	writeFile(t, ofXML, "<volume><name>of.img</name><capacity unit='E'>100</capacity></volume>")
	wantErr(t, d, "error: Failed to create vol from "+ofXML+"\nerror: numerical overflow: value too large: 100E\n", "vol-create", "e2eh", ofXML)
	maxXML := filepath.Join(t.TempDir(), "max.xml")
	writeFile(t, maxXML, "<volume><name>max.img</name><capacity>18446744073709551615</capacity></volume>")
	wantErrContains(t, d, "error: Failed to create vol from "+maxXML+"\nerror: ", "vol-create", "e2eh", maxXML)
	wantErr(t, d, "error: Numeric value '-1' for <offset> option is malformed or out of range\n",
		"vol-upload", "u.img", filepath.Join(base, "ten"), "--pool", "e2eh", "--offset", "-1")

	if got := treeOf(t, base); got != before {
		t.Errorf("hostile input changed the pool's files:\nbefore:\n%s\nafter:\n%s", before, got)
	}

	// go-libvirt: names and documents beyond the protocol's limits
	l := dialGoLibvirt(t, d)
	pool, err := l.StoragePoolLookupByName("e2eh")
	if err != nil {
		t.Fatal(err)
	}
	longName := strings.Repeat("n", 1<<20)
	err = withTimeout(t, "1 MiB volume name", func() error {
		_, err := l.StorageVolCreateXML(pool, "<volume><name>"+longName+"</name><capacity>1024</capacity></volume>", 0)
		return err
	})
	if err == nil {
		t.Errorf("a 1 MiB volume name was accepted")
	}
	t.Logf("1 MiB volume name: %.200v", err)
	err = withTimeout(t, "4 MiB pool name", func() error {
		_, err := l.StoragePoolDefineXML("<pool type='dir'><name>"+strings.Repeat("p", 4<<20)+"</name><target><path>/tmp/x</path></target></pool>", 0)
		return err
	})
	if err == nil {
		t.Errorf("a 4 MiB pool name was accepted")
	}
	t.Logf("4 MiB pool name: %.200v", err)
	_ = withTimeout(t, "disconnect", l.Disconnect)

	l = dialGoLibvirt(t, d)
	err = withTimeout(t, "20 MiB XML", func() error {
		_, err := l.StoragePoolDefineXML("<pool type='dir'><name>e2ebig</name><description>"+strings.Repeat("x", 20<<20)+"</description><target><path>/tmp/x</path></target></pool>", 0)
		return err
	})
	if err == nil {
		t.Errorf("a 20 MiB pool XML was accepted")
	}
	t.Logf("20 MiB pool XML: %.200v", err)
	_ = withTimeout(t, "disconnect", l.Disconnect)

	// upload past the end: libvirt 9.0 extends the file and writes the data at
	// the offset; anything else must be an error that leaves the file alone.
	vol := filepath.Join(base, "p", "u.img")
	orig, _ := os.ReadFile(vol)
	out, errOut, code := d.Virsh("vol-upload", "u.img", filepath.Join(base, "ten"), "--pool", "e2eh", "--offset", "2097152")
	got, _ := os.ReadFile(vol)
	switch {
	case code == 0:
		want := append(make([]byte, 2097152), "0123456789"...)
		if !bytes.Equal(got, want) {
			t.Errorf("upload past the end succeeded but the file is %d bytes, want %d with the data at the offset", len(got), len(want))
		}
	case !strings.HasPrefix(errOut, "error: "):
		t.Errorf("upload past the end: rc=%d stdout=%q stderr=%q, want a clear error", code, out, errOut)
	case !bytes.Equal(got, orig):
		t.Errorf("a refused upload past the end changed the file")
	}

	if got := treeOf(t, d.StorageDir()); got != beforeStorage {
		t.Errorf("hostile input changed the pool configs:\nbefore:\n%s\nafter:\n%s", beforeStorage, got)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(base), "esc.img")); err == nil {
		t.Errorf("a volume name with ../ escaped the pool")
	}
	wantOut(t, d, "e2eh                \n\n", "pool-list", "--all", "--name")
}
