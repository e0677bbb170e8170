package rpc

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPageMap(t *testing.T) {
	dir := t.TempDir()
	requireLocalFS(t, dir)
	path := filepath.Join(dir, "f")
	// 16 MB: more than any readahead window (8 MiB at most here) around one page.
	data := bytes.Repeat([]byte("virtstoraged"), 1400000)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var p pageMap
	defer p.unmap()
	if !p.inMemory(fd, 5, len(data)-10) {
		t.Error("a file just written is not in memory")
	}
	if p.inMemory(fd, int64(len(data)), 8192) {
		t.Error("the pages past the end of the file are in memory")
	}
	// A section past the first GiB gets a window of its own.
	far := int64(3<<30 + 12345)
	if _, err := f.WriteAt([]byte("far"), far); err != nil {
		t.Fatal(err)
	}
	if !p.inMemory(fd, far, 3) || p.start != 3<<30 {
		t.Errorf("a section written at %d: in memory %v, window at %d", far, p.inMemory(fd, far, 3), p.start)
	}
	if !p.inMemory(fd, 0, 4096) || p.start != 0 {
		t.Error("back at the start of the file: not in memory, or the window did not move")
	}
	proc, err := os.Open("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	if p.inMemory(int(proc.Fd()), 0, 10) {
		t.Error("a procfs file (which cannot be mapped) is in memory")
	}
	if err := unix.Fdatasync(fd); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if p.inMemory(fd, 0, len(data)) {
		t.Error("a file evicted from the page cache is in memory")
	}
	// One page read back: the section around it is still not all in memory.
	if _, err := unix.Pread(fd, make([]byte, 1), 8192); err != nil {
		t.Fatal(err)
	}
	if p.inMemory(fd, 0, len(data)) {
		t.Error("a file with one page read back is all in memory")
	}
	if !p.inMemory(fd, 8192, 1) {
		t.Error("the page read back is not in memory")
	}
}

// requireLocalFS skips where dir's filesystem keeps every page in memory
// (tmpfs) or is not local: page cache eviction is then not what the test
// can check.
func requireLocalFS(t *testing.T, dir string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	switch st.Type {
	case 0xEF53, 0x58465342, 0x9123683E, 0xF2F52010: // ext2-4, xfs, btrfs, f2fs
	default:
		t.Skipf("%s is on filesystem 0x%x, where eviction from the page cache cannot be checked", dir, st.Type)
	}
}

// The writer's half of a file frame makes up a file that shrank after its
// length went into the frame header with zeros, so that the frame is whole,
// and tells the download that the file ended.
func TestWriteFileBody(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "a")
	peer := os.NewFile(uintptr(fds[1]), "b")
	defer peer.Close()
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{nc: newRawIO(nc)}
	defer c.nc.Close()

	path := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte{7}, 4096)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()

	for _, tt := range []struct {
		name      string
		n         int
		wantEnded bool
	}{
		{"whole", 4096, false},
		{"the file ends first", 3 * 4096, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, tt.n)
				_, _ = io.ReadFull(peer, b)
				got <- b
			}()
			fileErr, err := c.writeFileBody(fileSection{fd: int(file.Fd()), off: 0, n: tt.n})
			if err != nil {
				t.Fatal(err)
			}
			var fe *fileError
			if ended := errors.As(fileErr, &fe) && fe.err == nil; ended != tt.wantEnded || (!tt.wantEnded && fileErr != nil) {
				t.Errorf("file error %v, want the file's end reported: %v", fileErr, tt.wantEnded)
			}
			want := append(append([]byte{}, data...), make([]byte, tt.n-len(data))...)
			if b := <-got; !bytes.Equal(b, want) {
				t.Errorf("the frame body differs from the file's data then zeros")
			}
		})
	}
}
