package testkit_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestMemoryBackend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testkit.NewMemoryBackend(1000)
	pool := &domain.PoolDef{Name: "p", Target: domain.PoolTarget{Path: "/p"}}

	if _, _, err := b.RefreshPool(ctx, pool); err == nil || err.Error() != "cannot open directory '/p': No such file or directory" {
		t.Fatalf("refresh of unbuilt pool: %v", err)
	}
	if active, _ := b.CheckPool(ctx, pool); active {
		t.Fatal("unbuilt pool reported active")
	}
	if err := b.BuildPool(ctx, pool, domain.PoolBuildOverwrite); err == nil {
		t.Fatal("dir-like build accepted --overwrite")
	}
	if err := b.BuildPool(ctx, pool, 0); err != nil {
		t.Fatal(err)
	}
	vol := &domain.VolDef{Name: "v", Capacity: 600}
	if err := b.PrepareVol(pool, vol); err != nil {
		t.Fatal(err)
	}
	if vol.Key != "/p/v" || vol.Target.Format != "raw" {
		t.Fatalf("prepared vol = %+v", vol)
	}
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	big := &domain.VolDef{Name: "big", Capacity: 600, Target: domain.VolTarget{Format: "raw"}}
	err := b.BuildVol(ctx, pool, big, 0)
	if domain.KindOf(err) != domain.KindSystem {
		t.Fatalf("overfull build: %v", err)
	}
	stats, vols, err := b.RefreshPool(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (domain.PoolStats{Capacity: 1000, Allocation: 600, Available: 400}) || len(vols) != 1 || vols[0].Key != "/p/v" {
		t.Fatalf("refresh = %+v %+v", stats, vols)
	}

	w, err := b.UploadVol(ctx, pool, vol, 2, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := string(b.VolumeData("p", "v")); got != "\x00\x00abc" {
		t.Fatalf("data = %q", got)
	}
	r, err := b.DownloadVol(ctx, pool, vol, 1, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, _, err := r.Next(buf)
	if err != nil || string(buf[:n]) != "\x00ab" {
		t.Fatalf("download = %q, %v", buf[:n], err)
	}
	if _, _, err := r.Next(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF, got %v", err)
	}

	if err := b.DeletePool(ctx, pool, 0); err == nil || err.Error() != "failed to remove pool '/p': Directory not empty" {
		t.Fatalf("delete of non-empty pool: %v", err)
	}
	if err := b.DeleteVol(ctx, pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.DeletePool(ctx, pool, 0); err != nil {
		t.Fatal(err)
	}
	if b.Exists("p") {
		t.Fatal("pool storage survived delete")
	}
}

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	s := testkit.NewMemoryStore()
	for _, n := range []string{"b", "a"} {
		if err := s.SaveConfig(n, "<"+n+"/>"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAutostart("a", true); err != nil {
		t.Fatal(err)
	}
	cfgs, _ := s.LoadConfigs()
	if len(cfgs) != 2 || cfgs[0].Name != "a" || !cfgs[0].Autostart || cfgs[1].Autostart {
		t.Fatalf("configs = %+v", cfgs)
	}
	if err := s.SaveStatus("a", "<s/>"); err != nil {
		t.Fatal(err)
	}
	st, _ := s.LoadStatus()
	if len(st) != 1 || st[0].XML != "<s/>" {
		t.Fatalf("status = %+v", st)
	}
	if err := s.DeleteStatus("nope"); err != nil {
		t.Fatalf("deleting a missing status file: %v", err)
	}
	s.Err = errors.New("disk full")
	if err := s.SaveConfig("c", "x"); err == nil {
		t.Fatal("Err not returned")
	}
}

func TestFakeCodecRoundTrip(t *testing.T) {
	t.Parallel()
	c := testkit.FakeCodec{}
	def := &domain.PoolDef{Name: "p", Target: domain.PoolTarget{Path: "/p"}, UUID: domain.UUID{1}}
	x, err := c.FormatPool(def, &domain.PoolStats{Capacity: 5})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ParsePool(x, 0)
	if err != nil || got.Name != "p" || got.UUID != def.UUID {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	if _, err := c.ParsePool("<pool", 0); domain.KindOf(err) != domain.KindXMLDetail {
		t.Fatalf("bad input: %v", err)
	}
	v, err := c.ParseVol(testkit.VolXML(&domain.VolDef{Name: "v", Capacity: 9, Key: "ignored"}), def, 0)
	if err != nil || v.Key != "" || v.Allocation != 9 || !v.HasCapacity {
		t.Fatalf("vol = %+v, %v", v, err)
	}
}

func TestRecordingSink(t *testing.T) {
	t.Parallel()
	var s testkit.RecordingSink
	s.PoolLifecycle(domain.PoolHandle{Name: "p"}, domain.EventDeleted, 0)
	s.PoolRefreshed(domain.PoolHandle{Name: "p"})
	got := s.Events()
	if len(got) != 2 || got[0] != "p:Deleted" || got[1] != "p:refresh" {
		t.Fatalf("events = %q", got)
	}
}
