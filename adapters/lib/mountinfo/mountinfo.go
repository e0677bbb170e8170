// Package mountinfo reads the kernel's table of mounts (/proc/self/mountinfo)
// so that the fs and netfs backends can tell whether a pool's source is
// mounted on its target. libvirt reads /proc/self/mounts through getmntent;
// mountinfo carries the same source and mount point plus the device numbers,
// and its format is the one the kernel documents as stable.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultPath is the mount table of the calling process's mount namespace.
const DefaultPath = "/proc/self/mountinfo"

// maxLine bounds one line of the table: a mount with many options or a long
// path is still far below it, and a garbage file cannot make us buffer without end.
const maxLine = 1 << 20

// Mount is one line of mountinfo (proc(5)). Paths are unescaped.
type Mount struct {
	ID           int
	ParentID     int
	Major, Minor uint32
	Root         string // the root of the mount within its filesystem
	MountPoint   string
	Options      string   // per-mount options (rw,nosuid,...)
	Optional     []string // shared:N, master:N, propagate_from:N, unbindable
	FSType       string
	Source       string // "none" when the filesystem has no source
	SuperOptions string
}

// Parse reads a mountinfo table. A malformed line is an error: a table we
// misread would make us mount a pool twice or report it unmounted.
func Parse(r io.Reader) ([]Mount, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var mounts []Mount
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo: line %d: %w", n, err)
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return mounts, nil
}

// ParseFile reads the table at path (DefaultPath when empty).
func ParseFile(path string) ([]Mount, error) {
	if path == "" {
		path = DefaultPath
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

func parseLine(line string) (Mount, error) {
	fields := strings.Fields(line)
	// Six fixed fields, then optional ones ended by "-", then three more.
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if len(fields) < 9 || sep < 0 || len(fields) < sep+3 {
		return Mount{}, fmt.Errorf("malformed line %q", line)
	}
	var m Mount
	var err error
	if m.ID, err = strconv.Atoi(fields[0]); err != nil {
		return Mount{}, fmt.Errorf("malformed mount id %q", fields[0])
	}
	if m.ParentID, err = strconv.Atoi(fields[1]); err != nil {
		return Mount{}, fmt.Errorf("malformed parent id %q", fields[1])
	}
	maj, min, ok := strings.Cut(fields[2], ":")
	if !ok {
		return Mount{}, fmt.Errorf("malformed device %q", fields[2])
	}
	major, err1 := strconv.ParseUint(maj, 10, 32)
	minor, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("malformed device %q", fields[2])
	}
	m.Major, m.Minor = uint32(major), uint32(minor)
	m.Root = Unescape(fields[3])
	m.MountPoint = Unescape(fields[4])
	m.Options = fields[5]
	if sep > 6 {
		m.Optional = fields[6:sep]
	}
	m.FSType = Unescape(fields[sep+1])
	m.Source = Unescape(fields[sep+2])
	if len(fields) > sep+3 {
		m.SuperOptions = fields[sep+3]
	}
	return m, nil
}

// Unescape undoes the kernel's octal escapes (\040 space, \011 tab, \012
// newline, \134 backslash) in a mountinfo field. A backslash not followed by
// three octal digits is kept as is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// IsMounted reports whether source is mounted on target, comparing both as
// libvirt's virFileComparePaths does: symbolic links are resolved where they
// can be (/dev/disk/by-id/X is the same device as /dev/sdb), and a source that
// is not a path (host:/export) is compared as written, less a trailing slash.
func IsMounted(mounts []Mount, source, target string) bool {
	wantTarget := canonical(target)
	wantSource := canonical(source)
	for _, m := range mounts {
		if canonical(m.MountPoint) == wantTarget && canonical(m.Source) == wantSource {
			return true
		}
	}
	return false
}

// MountedAt reports whether anything at all is mounted on target.
func MountedAt(mounts []Mount, target string) bool {
	want := canonical(target)
	for _, m := range mounts {
		if canonical(m.MountPoint) == want {
			return true
		}
	}
	return false
}

// Check reads the table at path (DefaultPath when empty) and reports whether
// source is mounted on target.
func Check(path, source, target string) (bool, error) {
	mounts, err := ParseFile(path)
	if err != nil {
		return false, err
	}
	return IsMounted(mounts, source, target), nil
}

func canonical(p string) string {
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return filepath.Clean(p)
	}
	// host:/dir, //host/share: the kernel shows what mount was given, so only
	// a trailing slash is forgiven.
	if len(p) > 1 {
		return strings.TrimRight(p, "/")
	}
	return p
}
