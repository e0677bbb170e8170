package rpc

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestInMemory(t *testing.T) {
	for _, check := range []struct {
		name string
		fn   func(fd int, off int64, n int, pages *[]byte) bool
	}{{"inMemory", inMemory}, {"mincore", mincoreInMemory}} {
		t.Run(check.name, func(t *testing.T) { testInMemory(t, check.fn) })
	}
}

func testInMemory(t *testing.T, inMemory func(fd int, off int64, n int, pages *[]byte) bool) {
	path := filepath.Join(t.TempDir(), "f")
	// 16 MB: more than any readahead window (8 MiB at most here) around one page.
	data := bytes.Repeat([]byte("virtstoraged"), 1400000)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var pages []byte
	if !inMemory(fd, 5, len(data)-10, &pages) {
		t.Error("a file just written is not in memory")
	}
	if inMemory(fd, int64(len(data)), 8192, &pages) {
		t.Error("the pages past the end of the file are in memory")
	}
	proc, err := os.Open("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	if inMemory(int(proc.Fd()), 0, 10, &pages) {
		t.Error("a procfs file is in memory")
	}
	var fsst unix.Statfs_t
	if err := unix.Fstatfs(fd, &fsst); err != nil {
		t.Fatal(err)
	}
	if fsst.Type == unix.TMPFS_MAGIC {
		t.Log("tmpfs keeps every page in memory: eviction not checked")
		return
	}
	if err := unix.Fdatasync(fd); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if inMemory(fd, 0, len(data), &pages) {
		t.Error("a file evicted from the page cache is in memory")
	}
	// One page read back: the section around it is still not all in memory.
	if _, err := unix.Pread(fd, make([]byte, 1), 8192); err != nil {
		t.Fatal(err)
	}
	if inMemory(fd, 0, len(data), &pages) {
		t.Error("a file with one page read back is all in memory")
	}
}

// The writer's half of a section makes up a file that shrank after its
// length went into the frame header with zeros, so that the frame is whole.
func TestSendSectionPadsAShrunkFile(t *testing.T) {
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

	const n = 3 * 4096
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, n)
		_, _ = io.ReadFull(peer, b)
		got <- b
	}()
	if err := c.sendSection(fileSection{fd: int(file.Fd()), off: 0, n: n}); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, data...), make([]byte, n-len(data))...)
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("the section's frame body differs from the file's data then zeros")
	}
}
