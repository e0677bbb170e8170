package imgformat_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/imgformat"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func requireQemuImg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not found (install qemu-utils): skipping tests on real images")
	}
}

func qemuImg(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

func probeFile(t testing.TB, path string) imgformat.Info {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	info, err := imgformat.Probe(f, st.Size())
	if err != nil {
		t.Fatalf("Probe(%s): %v", path, err)
	}
	return info
}

func TestProbeQemuImages(t *testing.T) {
	t.Parallel()
	requireQemuImg(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	qemuImg(t, "create", "-q", "-f", "raw", base, "1M")
	baseQ := filepath.Join(dir, "base.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", baseQ, "2M")
	tests := []struct {
		name string
		give []string // qemu-img create arguments after -f FMT; the path is appended
		size string
		want imgformat.Info
	}{
		{name: "raw", give: []string{"-f", "raw"}, size: "1M", want: imgformat.Info{Format: "raw"}},
		{
			name: "qcow2 v3", give: []string{"-f", "qcow2"}, size: "1G",
			want: imgformat.Info{Format: "qcow2", VirtualSize: 1 << 30, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1"},
		},
		{
			name: "qcow2 compat 0.10 cluster 128K", give: []string{"-f", "qcow2", "-o", "compat=0.10,cluster_size=131072"}, size: "5M",
			want: imgformat.Info{Format: "qcow2", VirtualSize: 5 << 20, HasVirtualSize: true, ClusterSize: 131072, Compat: "0.10"},
		},
		{
			name: "qcow2 lazy refcounts extended l2", give: []string{"-f", "qcow2", "-o", "compat=1.1,lazy_refcounts=on,extended_l2=on"}, size: "8M",
			want: imgformat.Info{Format: "qcow2", VirtualSize: 8 << 20, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1", LazyRefcounts: true, ExtendedL2: true},
		},
		{
			name: "qcow2 backing raw", give: []string{"-f", "qcow2", "-b", base, "-F", "raw"}, size: "",
			want: imgformat.Info{Format: "qcow2", VirtualSize: 1 << 20, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1", BackingFile: base, BackingFormat: "raw"},
		},
		{
			name: "qcow2 backing qcow2", give: []string{"-f", "qcow2", "-b", baseQ, "-F", "qcow2"}, size: "4M",
			want: imgformat.Info{Format: "qcow2", VirtualSize: 4 << 20, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1", BackingFile: baseQ, BackingFormat: "qcow2"},
		},
		{
			name: "qcow2 legacy aes", give: []string{"-f", "qcow2", "--object", "secret,id=s0,data=abc", "-o", "encrypt.format=aes,encrypt.key-secret=s0"}, size: "1M",
			want: imgformat.Info{Format: "qcow2", VirtualSize: 1 << 20, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1", Encryption: "qcow"},
		},
		{
			name: "qcow", give: []string{"-f", "qcow"}, size: "3M",
			want: imgformat.Info{Format: "qcow", VirtualSize: 3 << 20, HasVirtualSize: true, ClusterSize: 4096},
		},
		{
			name: "qed with raw backing", give: []string{"-f", "qed", "-b", base, "-F", "raw"}, size: "",
			want: imgformat.Info{Format: "qed", VirtualSize: 1 << 20, HasVirtualSize: true, ClusterSize: 65536, BackingFile: base, BackingFormat: "raw"},
		},
		{
			name: "qed", give: []string{"-f", "qed"}, size: "6M",
			want: imgformat.Info{Format: "qed", VirtualSize: 6 << 20, HasVirtualSize: true, ClusterSize: 65536},
		},
		{name: "vmdk sparse", give: []string{"-f", "vmdk"}, size: "7M", want: imgformat.Info{Format: "vmdk", VirtualSize: 7 << 20, HasVirtualSize: true}},
		// qemu-img rounds a dynamic VHD up to its CHS geometry, and says so in the footer.
		{name: "vpc dynamic", give: []string{"-f", "vpc"}, size: "10M", want: imgformat.Info{Format: "vpc", VirtualSize: 10514432, HasVirtualSize: true}},
		// Like qemu and libvirt, a fixed VHD (footer only at the end) probes as raw.
		{name: "vpc fixed", give: []string{"-f", "vpc", "-o", "subformat=fixed,force_size=on"}, size: "10M", want: imgformat.Info{Format: "raw"}},
		{name: "vdi", give: []string{"-f", "vdi"}, size: "9M", want: imgformat.Info{Format: "vdi", VirtualSize: 9 << 20, HasVirtualSize: true}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "img"+string(rune('a'+i)))
			args := append(append([]string{"create", "-q"}, tt.give...), path)
			if tt.size != "" {
				args = append(args, tt.size)
			}
			qemuImg(t, args...)
			if got := probeFile(t, path); got != tt.want {
				t.Errorf("Probe =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// qcow2Header builds a version 3 qcow2 header with the given fields.
func qcow2Header(size uint64, incompat, compat uint64, exts ...[]byte) []byte {
	b := make([]byte, 4096)
	copy(b, "QFI\xfb")
	be := binary.BigEndian
	be.PutUint32(b[4:], 3)
	be.PutUint32(b[20:], 16)
	be.PutUint64(b[24:], size)
	be.PutUint64(b[72:], incompat)
	be.PutUint64(b[80:], compat)
	be.PutUint32(b[100:], 104)
	off := 104
	for _, e := range exts {
		off += copy(b[off:], e)
	}
	return b
}

func ext(typ uint32, data string) []byte {
	l := (len(data) + 7) &^ 7
	b := make([]byte, 8+l)
	binary.BigEndian.PutUint32(b, typ)
	binary.BigEndian.PutUint32(b[4:], uint32(len(data)))
	copy(b[8:], data)
	return b
}

func TestProbeCrafted(t *testing.T) {
	t.Parallel()
	withBacking := qcow2Header(1<<20, 0, 1, ext(0xe2792aca, "qcow2"), ext(0x6803f857, "feature table junk"))
	binary.BigEndian.PutUint64(withBacking[8:], 2048)
	binary.BigEndian.PutUint32(withBacking[16:], 8)
	copy(withBacking[2048:], "base.img")

	// qemu-img takes seconds to derive a LUKS key, so the method field is
	// crafted instead.
	luks := qcow2Header(4096, 0, 0)
	binary.BigEndian.PutUint32(luks[32:], 2)

	iso := make([]byte, 40000)
	copy(iso[32769:], "CD001")

	// A LUKS1 header (qemu-img create -f luks) says where the payload
	// starts, in sectors: 4040 is what qemu-img writes by default.
	luksHeader := func(version uint16, payloadSectors uint32, size int) []byte {
		b := make([]byte, size)
		copy(b, "LUKS\xba\xbe")
		binary.BigEndian.PutUint16(b[6:], version)
		binary.BigEndian.PutUint32(b[104:], payloadSectors)
		return b
	}

	vmdkDesc := []byte("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"a-flat.vmdk\" 0\nRW 2048 FLAT \"b-flat.vmdk\" 0\n")

	badBacking := qcow2Header(1<<20, 0, 0)
	binary.BigEndian.PutUint64(badBacking[8:], 1<<40)
	binary.BigEndian.PutUint32(badBacking[16:], 8)

	tests := []struct {
		name    string
		give    []byte
		want    imgformat.Info
		wantErr bool
	}{
		{name: "empty file", give: nil, want: imgformat.Info{Format: "raw"}},
		{name: "zeros", give: make([]byte, 10000), want: imgformat.Info{Format: "raw"}},
		{
			name: "qcow2 lazy refcounts, backing and format extension", give: withBacking,
			want: imgformat.Info{Format: "qcow2", VirtualSize: 1 << 20, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1", LazyRefcounts: true, BackingFile: "base.img", BackingFormat: "qcow2"},
		},
		{
			name: "qcow2 extended l2 bit", give: qcow2Header(4096, 1<<4, 0),
			want: imgformat.Info{Format: "qcow2", VirtualSize: 4096, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1", ExtendedL2: true},
		},
		{name: "qcow2 backing offset past end", give: badBacking, want: imgformat.Info{Format: "qcow2", VirtualSize: 1 << 20, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1"}, wantErr: true},
		{name: "qcow2 header without cluster bits", give: append([]byte("QFI\xfb\x00\x00\x00\x02"), make([]byte, 96)...),
			want: imgformat.Info{Format: "qcow2", HasVirtualSize: true, Compat: "0.10"}},
		{name: "truncated qcow2", give: []byte("QFI\xfb\x00\x00\x00\x03"), want: imgformat.Info{Format: "qcow2"}, wantErr: true},
		{
			name: "qcow2 luks encryption method", give: luks,
			want: imgformat.Info{Format: "qcow2", VirtualSize: 4096, HasVirtualSize: true, ClusterSize: 65536, Compat: "1.1", Encryption: "luks"},
		},
		{name: "iso", give: iso, want: imgformat.Info{Format: "iso"}},
		{name: "luks raw", give: luksHeader(1, 4040, 4040*512+1<<20), want: imgformat.Info{Format: "raw", Encryption: "luks", VirtualSize: 1 << 20, HasVirtualSize: true}},
		{name: "luks header only", give: luksHeader(1, 4040, 4096), want: imgformat.Info{Format: "raw", Encryption: "luks", HasVirtualSize: true}},
		// libvirt knows LUKS1 only; a LUKS2 device probes as plain raw there too.
		{name: "luks2", give: luksHeader(2, 0, 4096), want: imgformat.Info{Format: "raw"}},
		{name: "luks truncated", give: []byte("LUKS\xba\xbe\x00\x01"), want: imgformat.Info{Format: "raw"}},
		{name: "vmdk descriptor", give: vmdkDesc, want: imgformat.Info{Format: "vmdk", VirtualSize: 2 << 20, HasVirtualSize: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := imgformat.Probe(bytes.NewReader(tt.give), int64(len(tt.give)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !imgformat.IsHeaderError(err) {
				t.Errorf("err = %v is not a header error", err)
			}
			if got != tt.want {
				t.Errorf("Probe =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// countingReader records how many bytes a probe reads.
type countingReader struct {
	r     *bytes.Reader
	total int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.total += n
	return n, err
}

func TestProbeReadsLittle(t *testing.T) {
	t.Parallel()
	cr := &countingReader{r: bytes.NewReader(make([]byte, 1<<20))}
	info, err := imgformat.Probe(cr, 1<<20)
	if err != nil || info.Format != "raw" {
		t.Fatalf("Probe = %+v, %v", info, err)
	}
	if cr.total > 8192 {
		t.Errorf("probe of a raw file read %d bytes", cr.total)
	}
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, os.ErrPermission }

func TestProbeIOError(t *testing.T) {
	t.Parallel()
	_, err := imgformat.Probe(failingReader{}, 100)
	if !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err = %v, want the read error", err)
	}
	if imgformat.IsHeaderError(err) {
		t.Error("an I/O error is not a header error")
	}
}

// Probe reads a header, never the image: the 4 KiB scratch buffer, a backing
// file name of at most maxBackingName (4 KiB) and its string copy, whatever
// size the header claims. Fuzzing measured at most 6 KB, so the bound has no
// per-byte term at all.
const (
	probeAllocPerByte = 0
	probeAllocSlack   = 16 << 10
)

func FuzzProbe(f *testing.F) {
	f.Add(qcow2Header(1<<20, 0, 1, ext(0xe2792aca, "raw")))
	f.Add([]byte("QFI\xfb\x00\x00\x00\x01"))
	f.Add([]byte("QED\x00"))
	f.Add([]byte("KDMV"))
	f.Add([]byte("conectix"))
	f.Add([]byte("# Disk DescriptorFile\nRW 1 FLAT x 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var info imgformat.Info
		var err error
		n := testkit.AllocatedBytes(func() { info, err = imgformat.Probe(bytes.NewReader(data), int64(len(data))) })
		if limit := probeAllocPerByte*uint64(len(data)) + probeAllocSlack; n > limit {
			t.Fatalf("Probe of %d bytes allocated %d, bound %d", len(data), n, limit)
		}
		if err == nil && info.Format == "" {
			t.Fatal("no format and no error")
		}
	})
}

// TestProbeQemuLUKS probes a raw LUKS image as qemu-img writes it: raw, LUKS
// encrypted, the capacity the payload behind the header.
func TestProbeQemuLUKS(t *testing.T) {
	t.Parallel()
	requireQemuImg(t)
	path := filepath.Join(t.TempDir(), "luks.img")
	args := []string{"create", "-q", "-f", "luks", "--object", "secret,id=s0,data=abc", "-o", "key-secret=s0,iter-time=10", path, "3M"}
	// qemu-img may fail to time its key derivation on a coarse thread clock
	// (adapters/luks retries the same way); each failure is immediate.
	for attempt := 1; ; attempt++ {
		out, err := exec.Command("qemu-img", args...).CombinedOutput()
		if err == nil {
			break
		}
		if attempt == 10 || !bytes.Contains(out, []byte("Unable to get accurate CPU usage")) {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	want := imgformat.Info{Format: "raw", Encryption: "luks", VirtualSize: 3 << 20, HasVirtualSize: true}
	if got := probeFile(t, path); got != want {
		t.Errorf("Probe =\n %+v\nwant\n %+v", got, want)
	}
}
