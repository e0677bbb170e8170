package blockdev_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// The testdata/blkid-*.txt files are real blkid answers; see
// testdata/README.md.

func readBlkid(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBlkid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    string // testdata file, or literal output when it has no .txt suffix
		want    blockdev.Probe
		wantErr string
	}{
		{name: "ext4", give: "blkid-ext4.txt", want: blockdev.Probe{Type: "ext4"}},
		{name: "ext4 of the logical capture", give: "blkid-ext4-loop2.txt", want: blockdev.Probe{Type: "ext4"}},
		{name: "gpt", give: "blkid-gpt.txt", want: blockdev.Probe{PTType: "gpt"}},
		{name: "lvm", give: "blkid-lvm2.txt", want: blockdev.Probe{Type: "LVM2_member"}},
		{name: "empty", give: ""},
		{name: "escaped", give: "TYPE=odd\\ name\n", want: blockdev.Probe{Type: "odd name"}},
		{name: "crlf, the later TYPE wins", give: "TYPE=xfs\r\nTYPE=ext4\r\nPTTYPE=gpt\r\n", want: blockdev.Probe{Type: "ext4", PTType: "gpt"}},
		{name: "no equals sign", give: "no equals sign\n", wantErr: `malformed blkid line "no equals sign"`},
		{name: "key only", give: "TYPE\n", wantErr: `malformed blkid line "TYPE"`},
		{name: "empty key", give: "=ext4\n", wantErr: `malformed blkid line "=ext4"`},
		{name: "line too long", give: "TYPE=" + strings.Repeat("x", 70<<10), wantErr: "reading blkid output: bufio.Scanner: token too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := []byte(tt.give)
			if strings.HasSuffix(tt.give, ".txt") {
				out = readBlkid(t, tt.give)
			}
			got, err := blockdev.ParseBlkid(out)
			if tt.wantErr != "" {
				var unreadable *blockdev.BlkidOutputError
				if !errors.As(err, &unreadable) || err.Error() != tt.wantErr {
					t.Fatalf("err = %#v, want a BlkidOutputError %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.Empty() != (tt.want == blockdev.Probe{}) {
				t.Errorf("Empty() = %v", got.Empty())
			}
		})
	}
}

func TestRunBlkid(t *testing.T) {
	t.Parallel()
	const dev = "/dev/sdb"
	tests := []struct {
		name     string
		giveCall testkit.FakeCall
		want     blockdev.Probe
		wantErr  func(error) bool
	}{
		{
			name:     "found",
			giveCall: testkit.FakeCall{Stdout: "TYPE=ext4\n"},
			want:     blockdev.Probe{Type: "ext4"},
		},
		{
			// Exit status 2 is blkid's "nothing found", not a failure.
			name:     "nothing found",
			giveCall: testkit.FakeCall{Exit: 2},
		},
		{
			name:     "blkid fails",
			giveCall: testkit.FakeCall{Exit: 4, Stderr: "blkid: error: /dev/sdb: No such file or directory"},
			// Returned as the runner gave it, for each backend to word.
			wantErr: func(err error) bool {
				var xe *ports.ExitError
				return errors.As(err, &xe) && xe.Code == 4
			},
		},
		{
			name:     "unreadable output",
			giveCall: testkit.FakeCall{Stdout: "garbage\n"},
			wantErr: func(err error) bool {
				var unreadable *blockdev.BlkidOutputError
				return errors.As(err, &unreadable) && unreadable.Line == "garbage"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			call := tt.giveCall
			call.Argv = blockdev.BlkidArgv(dev)
			got, err := blockdev.RunBlkid(context.Background(), testkit.NewFakeRunner(t, call), dev)
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) {
					t.Fatalf("err = %#v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

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
	for _, name := range []string{"blkid-ext4.txt", "blkid-ext4-loop2.txt", "blkid-gpt.txt", "blkid-lvm2.txt"} {
		f.Add(readBlkid(f, name))
	}
	f.Add([]byte("TYPE=odd\\ name\n"))
	f.Add([]byte("no equals sign\n"))
	// One line longer than bufio.Scanner's 64 KiB token limit.
	f.Add(append([]byte("TYPE="), bytes.Repeat([]byte("x"), 70<<10)...))
	f.Fuzz(func(t *testing.T, out []byte) {
		var p blockdev.Probe
		var err error
		n := testkit.AllocatedBytes(func() { p, err = blockdev.ParseBlkid(out) })
		if limit := blkidAllocPerByte*uint64(len(out)) + blkidAllocSlack; n > limit {
			t.Fatalf("ParseBlkid of %d bytes allocated %d, bound %d", len(out), n, limit)
		}
		if err != nil {
			if !p.Empty() {
				t.Fatalf("probe %+v along with error %v", p, err)
			}
			return
		}
		// Accepted output has a key on every line that is not blank.
		for _, line := range strings.Split(string(out), "\n") {
			line = strings.TrimSpace(line)
			if k, _, ok := strings.Cut(line, "="); line != "" && (!ok || k == "") {
				t.Fatalf("accepted the line %q", line)
			}
		}
		// What was read must survive being written back in blkid's own
		// escaping: the builds' overwrite checks compare these values.
		again, err := blockdev.ParseBlkid([]byte("TYPE=" + escapeBlkid(p.Type) + "\nPTTYPE=" + escapeBlkid(p.PTType) + "\n"))
		if err != nil || again != p {
			t.Fatalf("probe %+v read back as %+v, %v", p, again, err)
		}
	})
}
