package reliability_test

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/internal/reliability/daemonclient"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// treeState describes every file under dir: type, mode, size, content hash and
// symlink target, one line each, for before/after comparisons. skip names
// paths (relative to dir) whose subtree is left out.
func treeState(t testing.TB, dir string, skip ...string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, p+" error "+err.Error())
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s && d.IsDir() {
				return filepath.SkipDir
			}
			if rel == s {
				// SkipDir on a file would skip its remaining siblings.
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		line := fmt.Sprintf("%s %v %d", rel, fi.Mode(), fi.Size())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestNamesStayInsideThePool throws path-like pool and volume names, forged
// handles and symlinks at the daemon and checks that no file outside the pool
// target (or, for pools, outside the daemon's config and status directories)
// is created, changed or removed.
func TestNamesStayInsideThePool(t *testing.T) {
	tg := startProcess(t, testkit.DaemonOptions{})
	base := shortDir(t, "vsn")
	// The pool sits two levels down so that "../x" and "../../x" land on
	// decoys inside base.
	poolDir := filepath.Join(base, "a", "b", "pool")
	outside := filepath.Join(base, "outside")
	for _, p := range []string{
		filepath.Join(base, "a", "b", "x"), filepath.Join(base, "a", "x"), filepath.Join(base, "x"),
		filepath.Join(outside, "victim"), filepath.Join(outside, "dir", "inner"),
		filepath.Join(outside, "up-victim"), filepath.Join(outside, "wipe-victim"),
	} {
		writeFile(t, p, "precious "+filepath.Base(p)+"\n")
	}
	if err := os.MkdirAll(poolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(outside, "victim"), filepath.Join(poolDir, "link"))
	symlink(t, filepath.Join(outside, "dir"), filepath.Join(poolDir, "dirlink"))
	symlink(t, filepath.Join(outside, "up-victim"), filepath.Join(poolDir, "uplink"))
	symlink(t, filepath.Join(outside, "wipe-victim"), filepath.Join(poolDir, "wipelink"))
	symlink(t, filepath.Join(outside, "created-by-dangle"), filepath.Join(poolDir, "dangle"))

	c := dial(t, tg.rw, 0)
	ctx := ctxFor(t)
	xml := fmt.Sprintf("<pool type='dir'><name>names</name><target><path>%s</path></target></pool>", poolDir)
	ret, err := c.StoragePoolCreateXML(ctx, &remote.StoragePoolCreateXMLArgs{XML: xml})
	if err != nil {
		t.Fatal(err)
	}
	pool := ret.Pool

	outsideBefore := treeState(t, base, filepath.Join("a", "b", "pool"))
	rootBefore := treeState(t, tg.root, "daemon.log")
	poolBefore := treeState(t, poolDir)

	// libvirt lists symlinks as volumes (dangling ones are skipped).
	list, err := c.StoragePoolListVolumes(ctx, &remote.StoragePoolListVolumesArgs{Pool: pool, Maxnames: 100})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(list.Names)
	if got, want := strings.Join(list.Names, " "), "dirlink link uplink wipelink"; got != want {
		t.Errorf("volumes of a pool holding only symlinks: %q, want %q", got, want)
	}

	badNames := []string{"../x", "../../x", "../../../outside/victim", "a/b", "..", ".", "", "n\x00ul", "new\nline",
		filepath.Join(outside, "abs.img"), filepath.Join(base, "x")}
	for _, name := range badNames {
		// Creation by XML: the name is text in <name>; control characters go in
		// as character references (NUL cannot be written in XML at all).
		esc := strings.NewReplacer("\n", "&#10;", "\x00", "&#0;").Replace(name)
		volXML := "<volume><name>" + esc + "</name><capacity>1024</capacity></volume>"
		if v, err := c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: pool, XML: volXML}); err == nil {
			t.Errorf("volume name %q accepted (key %s)", name, v.Vol.Key)
		}
		if _, err := c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: pool, Name: name}); err == nil {
			t.Errorf("lookup of volume name %q succeeded", name)
		}
		// Forged handles: a client may send any name and key it likes.
		forged := remote.StorageVol{Pool: pool.Name, Name: name, Key: filepath.Join(poolDir, name)}
		if err := c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: forged}); err == nil {
			t.Errorf("delete of forged volume %q succeeded", name)
		}
		if err := c.StorageVolWipe(ctx, &remote.StorageVolWipeArgs{Vol: forged}); err == nil {
			t.Errorf("wipe of forged volume %q succeeded", name)
		}
		if err := c.StorageVolResize(ctx, &remote.StorageVolResizeArgs{Vol: forged, Capacity: 1}); err == nil {
			t.Errorf("resize of forged volume %q succeeded", name)
		}
		if st, err := c.StorageVolUpload(ctx, &remote.StorageVolUploadArgs{Vol: forged}); err == nil {
			_ = st.Abort()
			t.Errorf("upload to forged volume %q accepted", name)
		}
		cloneXML := "<volume><name>clone.img</name><capacity>1024</capacity></volume>"
		if _, err := c.StorageVolCreateXMLFrom(ctx, &remote.StorageVolCreateXMLFromArgs{Pool: pool, XML: cloneXML, Clonevol: forged}); err == nil {
			t.Errorf("clone of forged volume %q succeeded", name)
			_ = c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: remote.StorageVol{Pool: pool.Name, Name: "clone.img", Key: filepath.Join(poolDir, "clone.img")}})
		}
		if _, err := c.StorageVolLookupByPath(ctx, &remote.StorageVolLookupByPathArgs{Path: filepath.Join(poolDir, name)}); err == nil && strings.Contains(name, "/") {
			t.Errorf("lookup by path %q succeeded", filepath.Join(poolDir, name))
		}

		// Pool names: persistent (config file) and transient (status file).
		for _, define := range []bool{true, false} {
			pxml := fmt.Sprintf("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", esc, filepath.Join(base, "p"))
			var h remote.StoragePool
			if define {
				r, err := c.StoragePoolDefineXML(ctx, &remote.StoragePoolDefineXMLArgs{XML: pxml})
				if err != nil {
					continue
				}
				h = r.Pool
			} else {
				r, err := c.StoragePoolCreateXML(ctx, &remote.StoragePoolCreateXMLArgs{XML: pxml})
				if err != nil {
					continue
				}
				h = r.Pool
			}
			t.Errorf("pool name %q accepted (define=%v)", name, define)
			_ = c.StoragePoolDestroy(ctx, &remote.StoragePoolDestroyArgs{Pool: h})
			_ = c.StoragePoolUndefine(ctx, &remote.StoragePoolUndefineArgs{Pool: h})
		}
		if _, err := c.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: name}); err == nil {
			t.Errorf("lookup of pool name %q succeeded", name)
		}
	}

	// A volume XML naming a path outside: dir pools place volumes at
	// <target>/<name> whatever <target><path> says.
	v := createVolXML(t, c, pool, fmt.Sprintf("<volume><name>ok.img</name><capacity>1024</capacity>"+
		"<target><path>%s</path></target></volume>", filepath.Join(outside, "victim")))
	if want := filepath.Join(poolDir, "ok.img"); v.Key != want {
		t.Errorf("volume with an outside <target><path>: key %s, want %s", v.Key, want)
	}
	if err := c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: v}); err != nil {
		t.Errorf("delete ok.img: %v", err)
	}
	// A new volume named like a dangling symlink must not create the file the
	// link points to.
	if v, err := daemonclient.CreateVolume(ctx, c, pool, "dangle", 1024); err == nil {
		t.Errorf("volume over a dangling symlink created (key %s)", v.Key)
	}
	if _, err := os.Lstat(filepath.Join(outside, "created-by-dangle")); err == nil {
		t.Errorf("creating volume 'dangle' created the symlink's outside target")
	}

	if got := treeState(t, base, filepath.Join("a", "b", "pool")); got != outsideBefore {
		t.Errorf("files outside the pool changed:\nbefore:\n%s\nafter:\n%s", outsideBefore, got)
	}
	if got := treeState(t, poolDir); got != poolBefore {
		t.Errorf("files in the pool changed:\nbefore:\n%s\nafter:\n%s", poolBefore, got)
	}
	if got := treeState(t, tg.root, "daemon.log"); got != rootBefore {
		t.Errorf("daemon root changed:\nbefore:\n%s\nafter:\n%s", rootBefore, got)
	}

	// Deleting a symlink volume unlinks the link, never its target (libvirt).
	for _, name := range []string{"link", "dirlink"} {
		vol, err := c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: pool, Name: name})
		if err != nil {
			t.Errorf("lookup %s: %v", name, err)
			continue
		}
		if err := c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: vol.Vol}); err != nil {
			t.Logf("delete of symlink volume %s: %s", name, daemonclient.ErrText(err))
		} else if _, err := os.Lstat(filepath.Join(poolDir, name)); err == nil {
			t.Errorf("delete of %s succeeded but the link is still there", name)
		}
	}
	// Upload and wipe through a symlink: libvirt opens the path and follows the
	// link. Record what happens to the target; assert only that the link stays
	// a link and nothing else outside changes.
	if vol, err := c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: pool, Name: "uplink"}); err == nil {
		if st, err := c.StorageVolUpload(ctx, &remote.StorageVolUploadArgs{Vol: vol.Vol}); err == nil {
			err = st.Send([]byte("OVERWRITTEN"))
			if err == nil {
				err = st.Finish()
			}
			t.Logf("upload through symlink: %v", err)
		} else {
			t.Logf("upload through symlink refused: %s", daemonclient.ErrText(err))
		}
	}
	if vol, err := c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: pool, Name: "wipelink"}); err == nil {
		err := c.StorageVolWipe(ctx, &remote.StorageVolWipeArgs{Vol: vol.Vol})
		t.Logf("wipe through symlink: %v", daemonclient.ErrText(err))
	}
	for _, name := range []string{"up-victim", "wipe-victim"} {
		b, _ := os.ReadFile(filepath.Join(outside, name))
		t.Logf("outside target %s after upload/wipe through its link: %q", name, b)
	}
	for _, name := range []string{"uplink", "wipelink"} {
		if fi, err := os.Lstat(filepath.Join(poolDir, name)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink after upload/wipe (%v)", name, err)
		}
	}
	got := treeState(t, base, filepath.Join("a", "b", "pool"), filepath.Join("outside", "up-victim"), filepath.Join("outside", "wipe-victim"))
	want := outsideBefore
	var kept []string
	for _, l := range strings.Split(want, "\n") {
		if !strings.HasPrefix(l, filepath.Join("outside", "up-victim")+" ") && !strings.HasPrefix(l, filepath.Join("outside", "wipe-victim")+" ") {
			kept = append(kept, l)
		}
	}
	if want = strings.Join(kept, "\n"); got != want {
		t.Errorf("files outside the pool changed after symlink operations:\nbefore:\n%s\nafter:\n%s", want, got)
	}
}

func createVolXML(t testing.TB, c *remote.Client, pool remote.StoragePool, xml string) remote.StorageVol {
	t.Helper()
	ret, err := c.StorageVolCreateXML(ctxFor(t), &remote.StorageVolCreateXMLArgs{Pool: pool, XML: xml})
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	return ret.Vol
}
