package blockdev_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// device is a regular file standing in for a block device of size bytes.
func device(t *testing.T, size int, fill byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(p, bytes.Repeat([]byte{fill}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUpload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name       string
		giveOffset uint64
		giveLength uint64
		giveData   string
		giveHole   int64
		wantN      int
		wantErr    string
		wantFile   string // first 16 bytes afterwards
	}{
		{name: "at offset", giveOffset: 2, giveData: "abc", wantN: 3, wantFile: "xxabcxxxxxxxxxxx"},
		{name: "stops at the device end", giveOffset: 14, giveData: "abcd", wantN: 2, wantErr: "cannot write to stream: No space left on device", wantFile: "xxxxxxxxxxxxxxab"},
		{name: "stops at length", giveOffset: 0, giveLength: 2, giveData: "abcd", wantN: 2, wantErr: "cannot write to stream: No space left on device", wantFile: "abxxxxxxxxxxxxxx"},
		{name: "hole writes zeros", giveOffset: 1, giveHole: 3, giveData: "z", wantN: 1, wantFile: "x\x00\x00\x00zxxxxxxxxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := device(t, 16, 'x')
			w, err := blockdev.Upload(dev, tt.giveOffset, tt.giveLength, domain.StreamSparse, "fn")
			if err != nil {
				t.Fatal(err)
			}
			if tt.giveHole > 0 {
				if err := w.Hole(tt.giveHole); err != nil {
					t.Fatal(err)
				}
			}
			n, err := w.Write([]byte(tt.giveData))
			if n != tt.wantN {
				t.Errorf("wrote %d, want %d", n, tt.wantN)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				if de := domain.AsError(err); de.ErrorDomain() != domain.FromStreams {
					t.Errorf("error domain = %d, want streams", de.ErrorDomain())
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if err := w.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dev)
			if string(got) != tt.wantFile {
				t.Errorf("device = %q, want %q", got, tt.wantFile)
			}
		})
	}
}

func TestUploadErrors(t *testing.T) {
	t.Parallel()
	dev := device(t, 16, 'x')
	if _, err := blockdev.Upload(dev, 17, 0, 0, "fn"); domain.KindOf(err) != domain.KindInvalidArg {
		t.Errorf("offset past end: %v", err)
	}
	_, err := blockdev.Upload(dev, 0, 0, 2, "virStorageBackendVolUploadLocal")
	if err == nil || err.Error() != "unsupported flags (0x2) in function virStorageBackendVolUploadLocal" {
		t.Errorf("flags: %v", err)
	}
	_, err = blockdev.Upload(filepath.Join(t.TempDir(), "none"), 0, 0, 0, "fn")
	if err == nil || domain.KindOf(err) != domain.KindSystem {
		t.Errorf("missing device: %v", err)
	}
	if err != nil && !bytes.HasSuffix([]byte(err.Error()), []byte(": No such file or directory")) {
		t.Errorf("missing device text: %q", err)
	}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	dev := device(t, 10, 0)
	if err := os.WriteFile(dev, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		giveOffset uint64
		giveLength uint64
		want       string
	}{
		{"all", 0, 0, "0123456789"},
		{"window", 3, 4, "3456"},
		{"length past end", 8, 100, "89"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := blockdev.Download(dev, tt.giveOffset, tt.giveLength, domain.StreamSparse, "fn")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got []byte
			buf := make([]byte, 3)
			for {
				n, hole, err := r.Next(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if hole != 0 {
					t.Fatalf("a device download reported a hole of %d", hole)
				}
				got = append(got, buf[:n]...)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWipe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := device(t, 3<<20+5, 0xff)
	if err := blockdev.Wipe(ctx, testkit.NewFakeRunner(t), dev, domain.WipeZero); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(dev)
	if len(data) != 3<<20+5 || !bytes.Equal(data, make([]byte, len(data))) {
		t.Error("zero wipe left data or changed the size")
	}
	f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: []string{"scrub", "-f", "-p", "gutmann", dev}, Exit: 1, Stderr: "scrub: boom"})
	err := blockdev.Wipe(ctx, f, dev, domain.WipeGutmann)
	if err == nil || err.Error() != "internal error: Child process (scrub -f -p gutmann "+dev+") unexpected exit status 1: scrub: boom" {
		t.Errorf("scrub failure: %v", err)
	}
	err = blockdev.Wipe(ctx, testkit.NewFakeRunner(t), dev, domain.WipeTrim)
	if err == nil || err.Error() != "argument unsupported: 'trim' algorithm not supported" {
		t.Errorf("trim: %v", err)
	}
}

// TestWipeScrubsTheNodeNotTheLink: scrub(1) takes a symbolic link for an
// empty file ("warning: ... is zero length"), writes nothing and exits 0, and
// /dev/VG/LV and /dev/mapper/NAME are links to /dev/dm-N: the device the
// wipe opened is what scrub gets.
func TestWipeScrubsTheNodeNotTheLink(t *testing.T) {
	t.Parallel()
	dev := device(t, 1<<20, 0xff)
	link := filepath.Join(t.TempDir(), "lv")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: blockdev.ScrubArgv(dev, domain.WipeNNSA)})
	if err := blockdev.Wipe(context.Background(), f, link, domain.WipeNNSA); err != nil {
		t.Fatal(err)
	}
}

func TestZeroHeadTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveSize int
	}{
		{"large", 5 << 20},
		{"smaller than both ends", 1000},
		{"between one and two MiB", 3 << 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := device(t, tt.giveSize, 0xee)
			if err := blockdev.ZeroHeadTail(dev, 1<<20); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(dev)
			for i, c := range data {
				inEnds := i < 1<<20 || i >= len(data)-1<<20
				if inEnds != (c == 0) {
					t.Fatalf("byte %d = %#x after zeroing", i, c)
				}
			}
		})
	}
}

func TestCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := device(t, 3<<20, 0x5a)
	dst := device(t, 4<<20, 0)
	if err := blockdev.Copy(ctx, dst, src, 0); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(dst)
	if !bytes.Equal(data[:3<<20], bytes.Repeat([]byte{0x5a}, 3<<20)) || data[3<<20] != 0 {
		t.Error("copy did not copy exactly the source")
	}
	small := device(t, 1<<20, 0)
	if err := blockdev.Copy(ctx, small, src, 0); domain.KindOf(err) != domain.KindInvalidArg {
		t.Errorf("copy into a smaller device: %v", err)
	}
}

func TestCopyAndWipeReportProgress(t *testing.T) {
	t.Parallel()
	src := device(t, 3<<20+7, 0x5a)
	dst := device(t, 4<<20, 0)
	copied := &testkit.Progress{}
	if err := blockdev.Copy(ports.WithProgress(context.Background(), copied), dst, src, 0); err != nil {
		t.Fatal(err)
	}
	if got := copied.Done(); got != 3<<20+7 {
		t.Errorf("copy progress = %d, want the source's %d bytes", got, 3<<20+7)
	}
	wiped := &testkit.Progress{}
	if err := blockdev.Wipe(ports.WithProgress(context.Background(), wiped), testkit.NewFakeRunner(t), dst, domain.WipeZero); err != nil {
		t.Fatal(err)
	}
	if got := wiped.Done(); got != 4<<20 {
		t.Errorf("wipe progress = %d, want the device's %d bytes", got, 4<<20)
	}
}
