package dir_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// TestCloneAndWipeReportProgress checks that a clone counts the data it
// copies and the holes it skips, up to the source's end, and that a wipe
// counts the whole volume, written or truncated.
func TestCloneAndWipeReportProgress(t *testing.T) {
	t.Parallel()
	b, _ := fakeBackend(t)
	pool := newPool(t)
	srcPath := filepath.Join(pool.Target.Path, "src")
	const size = 20 << 20
	writeSparse(t, srcPath, size, map[int64][]byte{
		0:       bytes.Repeat([]byte{'a'}, 300000),
		8 << 20: bytes.Repeat([]byte{'c'}, 100000),
	})
	src := &domain.VolDef{Name: "src", Target: domain.VolTarget{Path: srcPath}}
	if err := b.RefreshVol(context.Background(), pool, src); err != nil {
		t.Fatal(err)
	}

	for _, capacity := range []uint64{0, 30 << 20} {
		vol := newVol(t, b, pool, fmt.Sprintf("clone%d", capacity>>20), "raw", capacity, func(v *domain.VolDef) {
			v.HasAllocation, v.Allocation = true, 0 // sparse: no allocation to count
		})
		p := &testkit.Progress{}
		if err := b.BuildVolFrom(ports.WithProgress(context.Background(), p), pool, vol, pool, src, 0); err != nil {
			t.Fatal(err)
		}
		if got := p.Done(); got != size {
			t.Errorf("clone into capacity %d: progress %d, want the source's %d", capacity, got, size)
		}
	}

	full := newVol(t, b, pool, "full", "raw", 3<<20, nil)
	if err := b.BuildVol(context.Background(), pool, full, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full.Target.Path, bytes.Repeat([]byte{0xff}, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &testkit.Progress{}
	if err := b.WipeVol(ports.WithProgress(context.Background(), p), pool, full, domain.WipeZero, 0); err != nil {
		t.Fatal(err)
	}
	if got := p.Done(); got != 3<<20 {
		t.Errorf("wipe of an allocated file: progress %d, want %d", got, 3<<20)
	}

	p = &testkit.Progress{}
	if err := b.WipeVol(ports.WithProgress(context.Background(), p), pool, src, domain.WipeZero, 0); err != nil {
		t.Fatal(err)
	}
	if got := p.Done(); got != size {
		t.Errorf("wipe of a sparse file by truncation: progress %d, want %d", got, size)
	}
}
