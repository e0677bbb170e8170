package blockdev_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

func TestStatNode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node")
	if err := os.WriteFile(p, []byte("abc"), 0o640); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 123456789)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	link := p + ".link"
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	n, err := blockdev.StatNode(link)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Perms{Mode: 0o640, Owner: int64(os.Getuid()), Group: int64(os.Getgid())}
	if n.Perms != want || n.Block || n.Size != 0 {
		t.Errorf("StatNode of a file = %+v; want perms %+v, not a block device", n, want)
	}
	if n.Times == nil || !n.Times.Mtime.Equal(mtime) || !n.Times.Atime.Equal(mtime) || n.Times.Ctime.IsZero() || !n.Times.Btime.IsZero() {
		t.Errorf("StatNode times = %+v; want atime and mtime %v, a ctime, no birth time", n.Times, mtime)
	}

	_, err = blockdev.StatNode(filepath.Join(t.TempDir(), "gone"))
	if err == nil || domain.KindOf(err) != domain.KindSystem || !strings.Contains(err.Error(), "No such file or directory") {
		t.Errorf("StatNode of a missing node: %v; want a system error for ENOENT", err)
	}
}
