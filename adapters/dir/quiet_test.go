package dir

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// qcow2Magic is enough of a qcow2 header for the probe to call a file qcow2.
var qcow2Magic = []byte{'Q', 'F', 'I', 0xfb, 0, 0, 0, 3}

func TestRefreshVolFromStat(t *testing.T) {
	tests := []struct {
		name string
		// late: the clock at the first read, relative to the file's ctime
		late time.Duration
		// change runs between the first and the second refresh
		change   func(t *testing.T, path string)
		wantFast bool
		// eitherWay: a change within the filesystem's time tick may leave
		// the times equal; then only the result is checked
		eitherWay bool
		wantFmt   string
	}{
		{name: "quiet and unchanged", late: time.Minute, wantFast: true, wantFmt: "raw"},
		{name: "read while still changing", late: 0, wantFmt: "raw"},
		{name: "rewritten after the read", late: time.Minute, wantFmt: "qcow2", change: func(t *testing.T, path string) {
			writeFile(t, path, append(qcow2Magic, make([]byte, 1<<16)...))
		}},
		{name: "replaced by another file", late: time.Minute, wantFmt: "qcow2", change: func(t *testing.T, path string) {
			other := path + ".new"
			writeFile(t, other, append(qcow2Magic, make([]byte, 1<<16)...))
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "mode changed", late: time.Minute, eitherWay: true, wantFmt: "raw", change: func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "v.img")
			writeFile(t, path, make([]byte, 1<<16))
			v := &FileVolumes{clock: func() time.Time { return time.Now().Add(tt.late) }}
			vol := &domain.VolDef{Name: "v.img", Target: domain.VolTarget{Path: path}}
			if err := v.RefreshVol(context.Background(), nil, vol); err != nil {
				t.Fatal(err)
			}
			if tt.change != nil {
				tt.change(t, path)
			}
			fast := v.quiet.refresh(vol.Clone())
			if fast != tt.wantFast && !tt.eitherWay {
				t.Errorf("quiet.refresh() = %v, want %v", fast, tt.wantFast)
			}
			if err := v.RefreshVol(context.Background(), nil, vol); err != nil {
				t.Fatal(err)
			}
			if vol.Target.Format != tt.wantFmt {
				t.Errorf("format = %q, want %q", vol.Target.Format, tt.wantFmt)
			}
			// Whatever the path taken, the result is what a full read gives.
			full := &domain.VolDef{Name: "v.img", Target: domain.VolTarget{Path: path}}
			if err := inspect(path, full, nil); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(vol, full) {
				t.Errorf("refreshed volume\n%+v\nwant (full read)\n%+v", vol, full)
			}
		})
	}
}

func TestRefreshVolFromStatSkipsBackedImages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.qcow2")
	writeFile(t, path, make([]byte, 4096))
	v := &FileVolumes{clock: func() time.Time { return time.Now().Add(time.Minute) }}
	vol := &domain.VolDef{Name: "v.qcow2", Target: domain.VolTarget{Path: path}}
	if err := v.RefreshVol(context.Background(), nil, vol); err != nil {
		t.Fatal(err)
	}
	vol.Backing = &domain.BackingStore{Path: "/elsewhere", Format: "raw"}
	if v.quiet.refresh(vol) {
		t.Error("a volume with a backing file was refreshed from a stat; the backing file may have changed")
	}
}

func TestDeleteVolForgetsQuietFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.img")
	writeFile(t, path, make([]byte, 4096))
	v := &FileVolumes{clock: func() time.Time { return time.Now().Add(time.Minute) }}
	vol := &domain.VolDef{Name: "v.img", Target: domain.VolTarget{Path: path}}
	if err := v.RefreshVol(context.Background(), nil, vol); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.quiet.files.Load(path); !ok {
		t.Fatal("a quiet file's read was not remembered")
	}
	if err := v.DeleteVol(context.Background(), nil, vol, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.quiet.files.Load(path); ok {
		t.Error("a deleted volume's file is still remembered")
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Two backends (two pools' FileVolumes) share no memory of quiet files: one
// trusting what the other read would answer from a read it never made.
func TestQuietFilesArePerInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.img")
	writeFile(t, path, make([]byte, 4096))
	late := func() time.Time { return time.Now().Add(time.Minute) }
	one, other := &FileVolumes{clock: late}, &FileVolumes{clock: late}
	vol := &domain.VolDef{Name: "v.img", Target: domain.VolTarget{Path: path}}
	if err := one.RefreshVol(context.Background(), nil, vol); err != nil {
		t.Fatal(err)
	}
	if !one.quiet.refresh(vol.Clone()) {
		t.Fatal("the reading instance does not remember its quiet read")
	}
	if other.quiet.refresh(vol.Clone()) {
		t.Error("another instance refreshed from a read it never made")
	}
}
