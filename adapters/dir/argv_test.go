package dir_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

const gib5 = 5 << 30

func TestQemuImgCreateArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveFmt   string
		giveCap   uint64
		giveMod   func(v *domain.VolDef, poolDir string)
		giveFlags uint32
		wantErr   string
	}{
		{name: "qcow2", giveFmt: "qcow2", giveCap: gib5},
		{name: "qcow2-1.1", giveFmt: "qcow2", giveCap: gib5, giveMod: func(v *domain.VolDef, _ string) { v.Target.Compat = "1.1" }},
		{name: "qcow2-lazy", giveFmt: "qcow2", giveCap: gib5, giveMod: func(v *domain.VolDef, _ string) {
			v.Target.Compat = "1.1"
			v.Target.LazyRefcounts = true
		}},
		{
			name: "qcow2-lazy-compat-0.10", giveFmt: "qcow2", giveCap: gib5,
			giveMod: func(v *domain.VolDef, _ string) { v.Target.LazyRefcounts = true },
			wantErr: "unsupported configuration: lazy_refcounts not supported with compat level 0.10",
		},
		{name: "qcow2-clusterSize", giveFmt: "qcow2", giveCap: gib5, giveMod: func(v *domain.VolDef, _ string) { v.Target.ClusterSize = 131072 }},
		{name: "qcow2-nocow", giveFmt: "qcow2", giveCap: gib5, giveMod: func(v *domain.VolDef, _ string) { v.Target.Nocow = true }},
		{name: "qcow2-extended-l2", giveFmt: "qcow2", giveCap: gib5, giveMod: func(v *domain.VolDef, _ string) {
			v.Target.Compat = "1.1"
			v.Target.ExtendedL2 = true
			v.Target.LazyRefcounts = true
		}},
		{name: "qcow2-prealloc-falloc", giveFmt: "qcow2", giveCap: gib5, giveFlags: domain.VolCreatePreallocMetadata},
		{name: "qcow2-prealloc-metadata", giveFmt: "qcow2", giveCap: gib5, giveFlags: domain.VolCreatePreallocMetadata, giveMod: func(v *domain.VolDef, _ string) {
			v.HasAllocation = true
			v.Allocation = 0
		}},
		{name: "qcow2-backing", giveFmt: "qcow2", giveCap: gib5, giveMod: func(v *domain.VolDef, d string) {
			v.Backing = &domain.BackingStore{Path: filepath.Join(d, "base.img")}
		}},
		{name: "qcow2-backing-qcow2-nocapacity", giveFmt: "qcow2", giveMod: func(v *domain.VolDef, d string) {
			v.HasCapacity = false
			v.Backing = &domain.BackingStore{Path: filepath.Join(d, "base.img"), Format: "qcow2"}
		}},
		{
			name: "qcow2-backing-prealloc", giveFmt: "qcow2", giveCap: gib5, giveFlags: domain.VolCreatePreallocMetadata,
			giveMod: func(v *domain.VolDef, d string) { v.Backing = &domain.BackingStore{Path: filepath.Join(d, "base.img")} },
			wantErr: "unsupported configuration: metadata preallocation conflicts with backing store",
		},
		{
			name: "qcow2-backing-missing", giveFmt: "qcow2", giveCap: gib5,
			giveMod: func(v *domain.VolDef, _ string) { v.Backing = &domain.BackingStore{Path: "/nonexistent/base"} },
			wantErr: "inaccessible backing store volume /nonexistent/base: No such file or directory",
		},
		{
			name: "qcow2-reflink", giveFmt: "qcow2", giveCap: gib5, giveFlags: domain.VolCreateReflink,
			wantErr: "unsupported flags (0x2) in function storageBackendCreateQemuImg",
		},
		{name: "qcow2-zerocapacity", giveFmt: "qcow2", giveCap: 0},
		{name: "qcow2-odd-capacity", giveFmt: "qcow2", giveCap: 1000},
		{name: "qed", giveFmt: "qed", giveCap: gib5},
		{name: "vmdk", giveFmt: "vmdk", giveCap: gib5},
		{name: "vpc", giveFmt: "vpc", giveCap: gib5},
		{name: "vdi", giveFmt: "vdi", giveCap: gib5},
		{name: "qcow", giveFmt: "qcow", giveCap: gib5},
		// qemu-img knows no iso format: libvirt writes a raw file.
		{name: "iso", giveFmt: "iso", giveCap: gib5},
		{name: "qcow2-backing-relative", giveFmt: "qcow2", giveCap: gib5, giveMod: func(v *domain.VolDef, _ string) {
			v.Backing = &domain.BackingStore{Path: "base.img", Format: "raw"}
		}},
		{
			name: "qcow2-extended-l2-compat-0.10", giveFmt: "qcow2", giveCap: gib5,
			giveMod: func(v *domain.VolDef, _ string) { v.Target.Compat, v.Target.ExtendedL2 = "0.10", true },
			wantErr: "unsupported configuration: 'extended_l2' not supported with compat level 0.10",
		},
		{
			name: "vmdk-prealloc", giveFmt: "vmdk", giveCap: gib5, giveFlags: domain.VolCreatePreallocMetadata,
			wantErr: "unsupported configuration: metadata preallocation only available with qcow2",
		},
		{
			name: "vmdk-compat", giveFmt: "vmdk", giveCap: gib5,
			giveMod: func(v *domain.VolDef, _ string) { v.Target.Compat = "1.1" },
			wantErr: "unsupported configuration: compatibility option only available with qcow2",
		},
		{
			name: "qed-empty-features", giveFmt: "qed", giveCap: gib5,
			giveMod: func(v *domain.VolDef, _ string) { v.Target.HasFeatures = true },
			wantErr: "unsupported configuration: format features only available with qcow2",
		},
		{
			name: "raw-luks-without-secret", giveFmt: "raw", giveCap: gib5,
			giveMod: func(v *domain.VolDef, _ string) { v.Target.Encryption = domain.VolEncryption{Format: "luks"} },
			wantErr: "invalid argument: A single <secret type='passphrase'...> element is expected in encryption description",
		},
		{
			name: "iso-backing", giveFmt: "iso", giveCap: gib5,
			giveMod: func(v *domain.VolDef, d string) { v.Backing = &domain.BackingStore{Path: filepath.Join(d, "base.img")} },
			wantErr: "unsupported configuration: cannot set backing store for raw volume",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f := fakeBackend(t)
			b.QemuImgOnly = true // the native qcow2 writer would skip the argv under test
			pool := newPool(t)
			if err := os.WriteFile(filepath.Join(pool.Target.Path, "base.img"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			vol := newVol(t, b, pool, "OtherDemo.img", tt.giveFmt, tt.giveCap, func(v *domain.VolDef) {
				if tt.giveMod != nil {
					tt.giveMod(v, pool.Target.Path)
				}
			})
			f.ExactOrder = false
			if tt.wantErr == "" {
				f.Expect("qemu-img", testkit.AnyRest).Do = touchLastArg
			}
			err := b.BuildVol(context.Background(), pool, vol, tt.giveFlags)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				if len(f.RunLog()) != 0 {
					t.Errorf("ran %v", f.RunLog())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, pool.Target.Path, f.RunLog())
			st, err := os.Stat(vol.Target.Path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode = %o, want 0600", st.Mode().Perm())
			}
		})
	}
}

func TestQemuImgConvertArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveSrc   string // source format
		giveDst   string
		giveCap   uint64 // asked capacity; the source has 1 MiB
		giveFlags uint32
		wantErr   string
	}{
		{name: "convert-raw-to-qcow2", giveSrc: "raw", giveDst: "qcow2", giveCap: 1 << 20},
		{name: "convert-qcow2-to-raw", giveSrc: "qcow2", giveDst: "raw", giveCap: 1 << 20},
		{name: "convert-qcow2-to-qcow2-prealloc", giveSrc: "qcow2", giveDst: "qcow2", giveCap: 1 << 20, giveFlags: domain.VolCreatePreallocMetadata},
		// A larger capacity is not applied to a convert (libvirt passes no
		// size), so formats qemu-img cannot resize clone as well as others.
		{name: "convert-grow", giveSrc: "qcow2", giveDst: "qcow2", giveCap: 20 << 20},
		{name: "convert-raw-to-vmdk-grow", giveSrc: "raw", giveDst: "vmdk", giveCap: 1<<20 + 512},
		{name: "convert-raw-to-vpc", giveSrc: "raw", giveDst: "vpc", giveCap: 2 << 20},
		{name: "convert-raw-to-vdi", giveSrc: "raw", giveDst: "vdi", giveCap: 2 << 20},
		{name: "convert-raw-to-qcow", giveSrc: "raw", giveDst: "qcow", giveCap: 2 << 20},
		{name: "convert-raw-to-qed", giveSrc: "raw", giveDst: "qed", giveCap: 2 << 20},
		{name: "convert-raw-to-iso", giveSrc: "raw", giveDst: "iso", giveCap: 1 << 20},
		{name: "convert-iso-to-raw", giveSrc: "iso", giveDst: "raw", giveCap: 2 << 20},
		{
			name: "convert-raw-to-vmdk-prealloc", giveSrc: "raw", giveDst: "vmdk", giveCap: 1 << 20, giveFlags: domain.VolCreatePreallocMetadata,
			wantErr: "unsupported configuration: metadata preallocation only available with qcow2",
		},
		{
			name: "convert-reflink", giveSrc: "qcow2", giveDst: "raw", giveCap: 1 << 20, giveFlags: domain.VolCreateReflink,
			wantErr: "unsupported flags (0x2) in function storageBackendCreateQemuImg",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f := fakeBackend(t)
			f.ExactOrder = false
			pool := newPool(t)
			src := &domain.VolDef{Name: "src", Type: domain.VolFile, Capacity: 1 << 20, HasCapacity: true,
				Target: domain.VolTarget{Path: filepath.Join(pool.Target.Path, "src"), Format: tt.giveSrc}}
			vol := newVol(t, b, pool, "OtherDemo.img", tt.giveDst, tt.giveCap, nil)
			if tt.wantErr == "" {
				f.Expect("qemu-img", "convert", testkit.AnyRest).Do = touchLastArg
			}
			err := b.BuildVolFrom(context.Background(), pool, vol, pool, src, tt.giveFlags)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, pool.Target.Path, f.RunLog())
			if vol.Capacity != max(tt.giveCap, src.Capacity) {
				t.Errorf("capacity = %d", vol.Capacity)
			}
		})
	}
}

func TestResizeAndScrubArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		giveFmt string
	}{
		{name: "resize-qcow2-grow", giveFmt: "qcow2"},
		{name: "resize-qcow2-shrink", giveFmt: "qcow2"},
		{name: "scrub-nnsa", giveFmt: "raw"},
		{name: "scrub-gutmann", giveFmt: "raw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f := fakeBackend(t)
			pool := newPool(t)
			path := filepath.Join(pool.Target.Path, "v")
			if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			vol := &domain.VolDef{Name: "v", Type: domain.VolFile, Capacity: 10 << 20, HasCapacity: true,
				Target: domain.VolTarget{Path: path, Format: tt.giveFmt}}
			ctx := context.Background()
			var err error
			switch tt.name {
			case "resize-qcow2-grow":
				f.Expect("qemu-img", testkit.AnyRest)
				err = b.ResizeVol(ctx, pool, vol, 20<<20+1, 0)
			case "resize-qcow2-shrink":
				f.Expect("qemu-img", testkit.AnyRest)
				err = b.ResizeVol(ctx, pool, vol, 5<<20, domain.VolResizeShrink)
			case "scrub-nnsa":
				f.Expect("scrub", testkit.AnyRest)
				err = b.WipeVol(ctx, pool, vol, domain.WipeNNSA, 0)
			case "scrub-gutmann":
				f.Expect("scrub", testkit.AnyRest)
				err = b.WipeVol(ctx, pool, vol, domain.WipeGutmann, 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, pool.Target.Path, f.RunLog())
		})
	}
}
