package dir_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Without the ploop tools (Debian's libvirt host), ploop volumes fail as in
// libvirt, and a clone takes libvirt's path: qemu-img for an image source,
// the ploop code (which refuses a raw source) otherwise.
func TestPloopVolumes(t *testing.T) {
	t.Parallel()
	noPloop := func(file string) (string, error) {
		if file == "ploop" {
			return "", ports.ErrCommandNotFound
		}
		return "/usr/bin/" + file, nil
	}
	tests := []struct {
		name      string
		giveSrc   string // source format, "" for a create
		giveFlags uint32
		wantArgv  []string
		wantErr   string
	}{
		{name: "create", wantErr: "internal error: unable to find ploop, please install ploop tools"},
		{name: "create with prealloc", giveFlags: domain.VolCreatePreallocMetadata,
			wantErr: "unsupported flags (0x1) in function storageBackendCreatePloop"},
		{name: "clone of raw", giveSrc: "raw", wantErr: "internal error: unsupported input storage vol type 1"},
		{name: "clone of qcow2", giveSrc: "qcow2", wantArgv: []string{"qemu-img", "convert", "-f", "qcow2", "-O", "ploop"},
			wantErr: "internal error: Child process (/usr/bin/qemu-img convert -f qcow2 -O ploop SRC DST) unexpected exit status 1: qemu-img: Unknown file format 'ploop'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f := fakeBackend(t)
			b.LookPath = noPloop
			pool := newPool(t)
			vol := newVol(t, b, pool, "v", "ploop", 1<<20, nil)
			if vol.Type != domain.VolPloop {
				t.Errorf("type = %v, want ploop", vol.Type)
			}
			var err error
			var srcPath string
			if tt.giveSrc == "" {
				err = b.BuildVol(context.Background(), pool, vol, tt.giveFlags)
			} else {
				src := &domain.VolDef{Name: "src", Type: domain.VolFile, Capacity: 1 << 20, HasCapacity: true,
					Target: domain.VolTarget{Path: filepath.Join(pool.Target.Path, "src"), Format: tt.giveSrc}}
				if tt.wantArgv != nil {
					c := f.Expect(append(tt.wantArgv, testkit.AnyRest)...)
					c.Exit, c.Stderr = 1, "qemu-img: Unknown file format 'ploop'\n"
				}
				srcPath = src.Target.Path
				err = b.BuildVolFrom(context.Background(), pool, vol, pool, src, tt.giveFlags)
			}
			if err == nil {
				t.Fatalf("no error, want %s", tt.wantErr)
			}
			got := err.Error()
			if srcPath != "" {
				got = strings.NewReplacer(srcPath, "SRC", vol.Target.Path, "DST").Replace(got)
			}
			if got != tt.wantErr {
				t.Errorf("err = %s\nwant %s", got, tt.wantErr)
			}
			if tt.wantArgv == nil && len(f.RunLog()) != 0 {
				t.Errorf("ran %v", f.RunLog())
			}
		})
	}
}
