package fs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// A line costs its string and, when escaped, the unescaped copy: fuzzing
// measured at most 7 bytes per input byte (a 70 KB line, whose scanner buffer
// doubles up to the limit) and 4.5 KB for a small input.
const (
	blkidAllocPerByte = 32
	blkidAllocSlack   = 16 << 10
)

// escapeBlkid writes a value back the way `blkid -o export` escapes it.
func escapeBlkid(v string) string {
	var b bytes.Buffer
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' || v[i] == ' ' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func FuzzParseBlkid(f *testing.F) {
	for _, name := range []string{"blkid-ext4.txt", "blkid-gpt.txt", "blkid-lvm2.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("TYPE=odd\\ name\n"))
	f.Add([]byte("no equals sign\n"))
	// One line longer than bufio.Scanner's 64 KiB token limit.
	f.Add(append([]byte("TYPE="), bytes.Repeat([]byte("x"), 70<<10)...))
	f.Fuzz(func(t *testing.T, out []byte) {
		var p fs.Probe
		var err error
		n := testkit.AllocatedBytes(func() { p, err = fs.ParseBlkid(out) })
		if limit := blkidAllocPerByte*uint64(len(out)) + blkidAllocSlack; n > limit {
			t.Fatalf("ParseBlkid of %d bytes allocated %d, bound %d", len(out), n, limit)
		}
		if err != nil {
			if !p.Empty() {
				t.Fatalf("probe %+v along with error %v", p, err)
			}
			return
		}
		// What was read must survive being written back in blkid's own
		// escaping: the build's overwrite check compares these values.
		again, err := fs.ParseBlkid([]byte("TYPE=" + escapeBlkid(p.Type) + "\nPTTYPE=" + escapeBlkid(p.PTType) + "\n"))
		if err != nil || again != p {
			t.Fatalf("probe %+v read back as %+v, %v", p, again, err)
		}
	})
}
