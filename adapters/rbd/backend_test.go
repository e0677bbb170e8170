package rbd_test

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/rbd"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var update = flag.Bool("update", false, "rewrite the golden .argv files in testdata/argv")

// keys is a secret driver holding one key.
type keys struct{ raw []byte }

func (k keys) CephKey(ctx context.Context, auth domain.PoolAuth) ([]byte, error) {
	return append([]byte(nil), k.raw...), nil
}

// cephxPool is a pool with cephx auth, two monitors (one IPv6) and an option.
func cephxPool() *domain.PoolDef {
	return &domain.PoolDef{
		Type: domain.PoolRBD, Name: "vms", UUID: domain.UUID{1},
		Source: domain.PoolSource{
			Hosts: []domain.SourceHost{{Name: "mon1", Port: 3300}, {Name: "::1", Port: 6789}, {Name: "mon3"}},
			Name:  "rbdpool",
			Auth:  &domain.PoolAuth{Type: "ceph", Username: "libvirt", SecretUsage: "ceph client.libvirt"},
		},
		RBDConfigOpts: []domain.ConfigOpt{{Name: "rbd_cache", Value: "false"}},
	}
}

// plainPool is a pool without auth (auth_client_required = none clusters).
func plainPool(alloc string) *domain.PoolDef {
	return &domain.PoolDef{
		Type: domain.PoolRBD, Name: "open", UUID: domain.UUID{2},
		Source:               domain.PoolSource{Hosts: []domain.SourceHost{{Name: "127.0.0.1", Port: 3300}}, Name: "rbd"},
		RefreshVolAllocation: alloc,
	}
}

// keyFileArg matches the private key file of one command.
var keyFileArg = regexp.MustCompile(`/virtstoraged-rbd-[0-9]+/key`)

// golden compares the commands run with testdata/argv/NAME.argv, one
// command a line, the key file's random directory replaced by KEYDIR.
// The rbd info commands that learn object sizes run concurrently, so a
// refresh that runs them (refresh-capacity) is compared sorted.
func golden(t *testing.T, name string, f *testkit.FakeRunner, keyDir string) {
	t.Helper()
	var lines []string
	for _, argv := range f.RunLog() {
		line := testkit.FormatArgv(argv)
		lines = append(lines, strings.ReplaceAll(keyFileArg.ReplaceAllString(line, "/KEYDIR/key"), keyDir, ""))
	}
	if name == "refresh-capacity" {
		slices.Sort(lines)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	testkit.Golden(t, filepath.Join("testdata", "argv", name+".argv"), b.String(), *update)
}

// any matches one command whatever its arguments, with a canned answer.
func any(tool, stdout string) testkit.FakeCall {
	return testkit.FakeCall{Argv: []string{tool, testkit.AnyRest}, Stdout: stdout}
}

func newBackend(t *testing.T, f *testkit.FakeRunner, secrets rbd.SecretLookup) (*rbd.Backend, string) {
	keyDir := t.TempDir()
	b := rbd.New(f, rbd.Config{Secrets: secrets, KeyDir: keyDir}, nil)
	b.SetSnapNumber(42)
	t.Cleanup(func() {
		if left, _ := os.ReadDir(keyDir); len(left) != 0 {
			t.Errorf("key directories left behind: %v", left)
		}
	})
	return b, keyDir
}

const (
	dfOut   = `{"pools":[{"name":"other","size_bytes":5},{"name":"rbd","size_bytes":9441455}],"total_used":9250,"total_avail":2087901,"total_space":2097152}`
	lsOut   = `[{"image":"a","id":"10a","size":10485760,"format":2},{"image":"a","id":"10a","snapshot":"s","snapshot_id":4,"size":10485760,"format":2,"protected":"true"},{"image":"b","id":"10b","size":5000000,"format":2}]`
	duOut   = `{"images":[{"name":"a","id":"10a","snapshot":"s","snapshot_id":4,"provisioned_size":10485760,"used_size":4194304},{"name":"a","id":"10a","provisioned_size":10485760,"used_size":4194304},{"name":"b","id":"10b","provisioned_size":5000000,"used_size":0}],"total_provisioned_size":15485760,"total_used_size":8388608}`
	infoOut = `{"name":"b","id":"10b","size":5000000,"objects":2,"order":22,"object_size":4194304,"format":2,"features":["layering","exclusive-lock","object-map","fast-diff","deep-flatten","operations"],"op_features":[],"flags":[]}`
)

// TestRefresh checks the figures and the commands of a refresh for each
// <refresh> setting: two commands whatever the number of images, plus one
// rbd info per image of an odd size seen for the first time when whole
// objects are counted.
func TestRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name      string
		alloc     string
		calls     []testkit.FakeCall
		wantAlloc map[string]uint64
	}{
		{"refresh-default", "default", []testkit.FakeCall{any("rados", dfOut), any("rbd", duOut)},
			map[string]uint64{"a": 8388608, "b": 0}},
		{"refresh-capacity", "capacity", []testkit.FakeCall{any("rados", dfOut), any("rbd", lsOut),
			any("rbd", strings.NewReplacer(`"b"`, `"a"`, `"10b"`, `"10a"`).Replace(infoOut)), any("rbd", infoOut)},
			map[string]uint64{"a": 12582912, "b": 8388608}},
		// Sizes that are multiples of the largest object size need no rbd
		// info: whole objects add up to the size whatever the object size.
		{"refresh-capacity-aligned", "capacity", []testkit.FakeCall{any("rados", dfOut),
			any("rbd", `[{"image":"a","id":"10a","size":1073741824,"format":2},{"image":"b","id":"10b","size":67108864,"format":2}]`)},
			map[string]uint64{"a": 1073741824, "b": 67108864}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := testkit.NewFakeRunner(t, tt.calls...)
			b, keyDir := newBackend(t, f, nil)
			def := plainPool(tt.alloc)
			stats, vols, err := b.RefreshPool(ctx, def)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Capacity != 2097152*1024 || stats.Available != 2087901*1024 || stats.Allocation != 9441455 {
				t.Errorf("stats %+v", stats)
			}
			if len(vols) != 2 {
				t.Fatalf("vols %+v", vols)
			}
			for _, v := range vols {
				if v.Allocation != tt.wantAlloc[v.Name] || v.Key != "rbd/"+v.Name || v.Target.Path != "rbd/"+v.Name ||
					v.Type != domain.VolNetwork || v.Target.Format != "raw" {
					t.Errorf("vol %+v, want allocation %d", v, tt.wantAlloc[v.Name])
				}
			}
			golden(t, tt.name, f, keyDir)
		})
	}
}

// TestRefreshVolFromListing: after a refresh, a volume's figures come from
// its listing until the listing is ListingTTL old or the image changes.
func TestRefreshVolFromListing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := testkit.NewFakeRunner(t, any("rados", dfOut), any("rbd", duOut),
		any("rbd", `{"images":[{"name":"b","provisioned_size":5000000,"used_size":4194304}]}`),
		any("rbd", ""), // resize
		any("rbd", `{"images":[{"name":"a","provisioned_size":20971520,"used_size":0}]}`))
	b, keyDir := newBackend(t, f, nil)
	now := time.Unix(1000, 0)
	b.SetClock(func() time.Time { return now })
	def := plainPool("default")
	if _, _, err := b.RefreshPool(ctx, def); err != nil {
		t.Fatal(err)
	}
	v := &domain.VolDef{Name: "b"}
	if err := b.RefreshVol(ctx, def, v); err != nil || v.Capacity != 5000000 || v.Allocation != 0 {
		t.Fatalf("from the listing: %+v %v", v, err)
	}
	now = now.Add(rbd.DefaultListingTTL)
	if err := b.RefreshVol(ctx, def, v); err != nil || v.Allocation != 4194304 {
		t.Fatalf("after the TTL: %+v %v", v, err)
	}
	a := &domain.VolDef{Name: "a", Capacity: 10485760}
	now = time.Unix(1000, 0)
	if err := b.ResizeVol(ctx, def, a, 20971520, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.RefreshVol(ctx, def, a); err != nil || a.Capacity != 20971520 {
		t.Fatalf("after our resize: %+v %v", a, err)
	}
	golden(t, "refresh-vol-listing", f, keyDir)
}

// TestCommands runs each volume operation on a cephx pool and compares its
// commands with the golden files.
func TestCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	vol := func(name string) *domain.VolDef {
		return &domain.VolDef{Name: name, Capacity: 10 << 20, HasCapacity: true, Target: domain.VolTarget{Format: "raw"}}
	}
	snaps := `[{"id":4,"name":"s1","size":10485760,"protected":"true"},{"id":5,"name":"s2","size":10485760,"protected":"false"}]`
	tests := []struct {
		name  string
		calls []testkit.FakeCall
		run   func(b *rbd.Backend, def *domain.PoolDef) error
	}{
		{"create", []testkit.FakeCall{any("rbd", "")}, func(b *rbd.Backend, def *domain.PoolDef) error {
			v := vol("new")
			if err := b.PrepareVol(def, v); err != nil {
				return err
			}
			return b.BuildVol(ctx, def, v, 0)
		}},
		{"refresh-vol-capacity", []testkit.FakeCall{any("rbd", infoOut)}, func(b *rbd.Backend, def *domain.PoolDef) error {
			return b.RefreshVol(ctx, def, vol("b"))
		}},
		{"delete", []testkit.FakeCall{any("rbd", "")}, func(b *rbd.Backend, def *domain.PoolDef) error {
			return b.DeleteVol(ctx, def, vol("old"), 0)
		}},
		{"delete-with-snapshots", []testkit.FakeCall{any("rbd", snaps), any("rbd", ""), any("rbd", ""), any("rbd", ""), any("rbd", "")},
			func(b *rbd.Backend, def *domain.PoolDef) error { return b.DeleteVol(ctx, def, vol("old"), 2) }},
		{"clone-new-snapshot", []testkit.FakeCall{any("rbd", infoOut), any("rbd", `[{"id":4,"name":"busy","protected":"false"}]`),
			any("rbd", `[{"offset":0,"length":4194304,"exists":"true"}]`), any("rbd", ""), any("rbd", ""), any("rbd", ""), any("rbd", "")},
			func(b *rbd.Backend, def *domain.PoolDef) error {
				return b.BuildVolFrom(ctx, def, vol("copy"), def, vol("b"), 0)
			}},
		{"clone-reuse-snapshot", []testkit.FakeCall{any("rbd", infoOut), any("rbd", `[{"id":4,"name":"libvirt-7","protected":"true"}]`),
			any("rbd", `[]`), any("rbd", ""), any("rbd", "")},
			func(b *rbd.Backend, def *domain.PoolDef) error {
				return b.BuildVolFrom(ctx, def, vol("copy"), def, vol("b"), 0)
			}},
		{"resize", []testkit.FakeCall{any("rbd", "")}, func(b *rbd.Backend, def *domain.PoolDef) error {
			return b.ResizeVol(ctx, def, vol("b"), 20<<20, 0)
		}},
		{"wipe-zero", []testkit.FakeCall{any("rbd", infoOut), drain("rbd")}, func(b *rbd.Backend, def *domain.PoolDef) error {
			return b.WipeVol(ctx, def, vol("b"), domain.WipeZero, 0)
		}},
		{"wipe-trim", []testkit.FakeCall{any("rbd", infoOut), drain("rbd")}, func(b *rbd.Backend, def *domain.PoolDef) error {
			return b.WipeVol(ctx, def, vol("b"), domain.WipeTrim, 0)
		}},
		{"upload", []testkit.FakeCall{drain("rbd")}, func(b *rbd.Backend, def *domain.PoolDef) error {
			w, err := b.UploadVol(ctx, def, vol("b"), 0, 0, 0)
			if err != nil {
				return err
			}
			return w.Finish(ctx)
		}},
		{"download", []testkit.FakeCall{emit("rbd", diffStream(4, nil))}, func(b *rbd.Backend, def *domain.PoolDef) error {
			r, err := b.DownloadVol(ctx, def, vol("b"), 0, 0, 0)
			if err != nil {
				return err
			}
			defer r.Close()
			_, _, err = r.Next(make([]byte, 16))
			return err
		}},
	}
	for _, tt := range tests {
		for _, pool := range []struct {
			suffix string
			def    *domain.PoolDef
		}{{"", cephxPool()}, {"-noauth", plainPool("")}} {
			t.Run(tt.name+pool.suffix, func(t *testing.T) {
				t.Parallel()
				f := testkit.NewFakeRunner(t, tt.calls...)
				b, keyDir := newBackend(t, f, keys{[]byte("0123456789abcdef")})
				if err := tt.run(b, pool.def); err != nil {
					t.Fatal(err)
				}
				golden(t, tt.name+pool.suffix, f, keyDir)
				for _, c := range f.Commands() {
					if strings.Contains(strings.Join(c.Args, " "), "MDEyMzQ1Njc4OWFiY2RlZg==") {
						t.Errorf("the key is on the command line: %q", c.Args)
					}
				}
			})
		}
	}
}

// drain is an import-diff that reads its stream to the end.
func drain(tool string) testkit.FakeCall {
	c := any(tool, "")
	c.Do = func(cmd ports.Command) error {
		_, err := io.Copy(io.Discard, cmd.StdinStream)
		return err
	}
	return c
}

// emit is an export-diff that writes stream to its stdout.
func emit(tool string, stream []byte) testkit.FakeCall {
	c := any(tool, "")
	c.Do = func(cmd ports.Command) error {
		_, err := cmd.StdoutStream.Write(stream)
		return err
	}
	return c
}

// diffStream builds an export-diff stream of an image of size bytes with
// the given data extents (offset -> bytes), ended.
func diffStream(size uint64, extents []extent) []byte {
	b := []byte("rbd diff v1\n")
	b = append(b, 's')
	b = binary.LittleEndian.AppendUint64(b, size)
	for _, e := range extents {
		b = append(b, e.tag)
		b = binary.LittleEndian.AppendUint64(b, e.off)
		if e.tag == 'z' {
			b = binary.LittleEndian.AppendUint64(b, e.n)
			continue
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(len(e.data)))
		b = append(b, e.data...)
	}
	return append(b, 'e')
}

type extent struct {
	tag  byte
	off  uint64
	data []byte
	n    uint64
}

// TestErrors maps failed commands to libvirt's errors with the real errno.
func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		call    testkit.FakeCall
		run     func(b *rbd.Backend, def *domain.PoolDef) error
		wantErr string
	}{
		{"create exists", testkit.FakeCall{Argv: []string{"rbd", testkit.AnyRest}, Exit: 17, Stderr: "rbd: create error: (17) File exists\n"},
			func(b *rbd.Backend, def *domain.PoolDef) error {
				return b.BuildVol(ctx, def, &domain.VolDef{Name: "x", Capacity: 1}, 0)
			}, "failed to create volume 'rbd/x': File exists"},
		{"remove with snapshots", testkit.FakeCall{Argv: []string{"rbd", testkit.AnyRest}, Exit: 39, Stderr: "rbd: image has snapshots - these must be deleted with 'rbd snap purge' before the image can be removed.\n"},
			func(b *rbd.Backend, def *domain.PoolDef) error {
				return b.DeleteVol(ctx, def, &domain.VolDef{Name: "x"}, 0)
			},
			"failed to remove volume 'rbd/x': Directory not empty"},
		{"remove gone", testkit.FakeCall{Argv: []string{"rbd", testkit.AnyRest}, Exit: 2, Stderr: "rbd: delete error: (2) No such file or directory\n"},
			func(b *rbd.Backend, def *domain.PoolDef) error {
				return b.DeleteVol(ctx, def, &domain.VolDef{Name: "x"}, 0)
			}, ""},
		{"no monitor", testkit.FakeCall{Argv: []string{"rados", testkit.AnyRest}, Exit: 1, Stderr: "monclient(hunting): authenticate timed out after 30\ncouldn't connect to cluster: (110) Connection timed out\n"},
			func(b *rbd.Backend, def *domain.PoolDef) error { _, _, err := b.RefreshPool(ctx, def); return err },
			"failed to connect to the RADOS monitor on: 127.0.0.1:3300: Connection timed out"},
		{"no pool", testkit.FakeCall{Argv: []string{"rados", testkit.AnyRest}, Exit: 1, Stderr: "error opening pool rbd: (2) No such file or directory\n"},
			func(b *rbd.Backend, def *domain.PoolDef) error { _, _, err := b.RefreshPool(ctx, def); return err },
			"failed to create the RBD IoCTX. Does the pool 'rbd' exist?: No such file or directory"},
		{"image gone", testkit.FakeCall{Argv: []string{"rbd", testkit.AnyRest}, Exit: 2, Stderr: "rbd: error opening image x: (2) No such file or directory\n"},
			func(b *rbd.Backend, def *domain.PoolDef) error {
				return b.RefreshVol(ctx, def, &domain.VolDef{Name: "x"})
			},
			"failed to open the RBD image 'x': No such file or directory"},
		{"no rados command", testkit.FakeCall{Argv: []string{"rados", testkit.AnyRest}, Err: ports.ErrCommandNotFound},
			func(b *rbd.Backend, def *domain.PoolDef) error { _, _, err := b.RefreshPool(ctx, def); return err },
			"Cannot find 'rados' in path: No such file or directory"},
		{"killed at the deadline", testkit.FakeCall{Argv: []string{"rbd", testkit.AnyRest}, Exit: -1},
			func(b *rbd.Backend, def *domain.PoolDef) error {
				return b.ResizeVol(ctx, def, &domain.VolDef{Name: "x"}, 1, 0)
			},
			"failed to resize the RBD image 'x': Connection timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := testkit.NewFakeRunner(t, tt.call)
			b, _ := newBackend(t, f, nil)
			err := tt.run(b, plainPool(""))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if domain.KindOf(err) != domain.KindSystem {
				t.Errorf("kind %v, want a system error", domain.KindOf(err))
			}
		})
	}
}

// TestRefusals checks what the backend refuses before running anything,
// with libvirt's texts.
func TestRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := testkit.NewFakeRunner(t)
	b, _ := newBackend(t, f, nil)
	def := plainPool("")
	v := &domain.VolDef{Name: "v", Capacity: 1 << 20}
	for _, c := range []struct {
		err  error
		want string
	}{
		{b.PrepareVol(def, &domain.VolDef{Name: "q", Target: domain.VolTarget{Format: "qcow2"}}), "unsupported configuration: only RAW volumes are supported by this storage pool"},
		{b.BuildVol(ctx, def, &domain.VolDef{Name: "z"}, 0), "this function is not supported by the connection driver: volume capacity required for this storage pool"},
		{b.BuildVol(ctx, def, &domain.VolDef{Name: "e", Capacity: 1, Target: domain.VolTarget{Encryption: domain.VolEncryption{Format: "luks"}}}, 0), "unsupported configuration: storage pool does not support encrypted volumes"},
		{b.BuildVol(ctx, def, v, 1), "unsupported flags (0x1) in function virStorageBackendRBDBuildVol"},
		{b.ResizeVol(ctx, def, v, 1, domain.VolResizeShrink), "unsupported flags (0x4) in function virStorageBackendRBDResizeVol"},
		{b.WipeVol(ctx, def, v, domain.WipeDOD, 0), "invalid argument: unsupported algorithm 2"},
		{b.DeleteVol(ctx, def, v, 4), "unsupported flags (0x4) in function virStorageBackendRBDDeleteVol"},
		{b.ValidatePool(&domain.PoolDef{RBDConfigOpts: []domain.ConfigOpt{{Name: "key", Value: "AQ=="}}}), "unsupported configuration: rbd option 'key' would expose a key; use <auth> with a secret"},
		{b.ValidatePool(&domain.PoolDef{RBDConfigOpts: []domain.ConfigOpt{{Name: "a=b", Value: "1"}}}), "unsupported configuration: invalid rbd option name 'a=b'"},
		{b.PrepareVol(def, &domain.VolDef{Name: "a@b"}), "Requested operation is not valid: volume name 'a@b' cannot contain '@' in an rbd pool"},
		{b.ValidatePool(&domain.PoolDef{Source: domain.PoolSource{Name: "-rf"}}), "unsupported configuration: invalid rbd pool name '-rf'"},
		{b.BuildVolFrom(ctx, def, v, &domain.PoolDef{Type: domain.PoolDir, Name: "d"}, v, 0), "unsupported configuration: cannot clone volume 'v' of pool 'd' into rbd pool 'open': only images of the same Ceph cluster can be cloned"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("error %v, want %q", c.err, c.want)
		}
	}
	// A pool with auth and no secret driver fails as libvirt without one.
	_, _, err := b.RefreshPool(ctx, cephxPool())
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindNoConnect || err.Error() != "no connection driver available for secret:///system" {
		t.Errorf("auth without a secret driver: %v", err)
	}
}
