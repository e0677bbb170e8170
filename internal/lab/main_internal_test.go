package lab

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGuestArgs(t *testing.T) {
	tests := []struct {
		name string
		give []string
		want []string
	}{
		{"go test's flags", []string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.v=true", "-test.run=^TestX$"},
			[]string{"-test.paniconexit0", "-test.v=true", "-test.run=^TestX$", "-test.timeout=8m30s"}},
		{"timeout as two words", []string{"-test.timeout", "20m", "-test.count=1"},
			[]string{"-test.count=1", "-test.timeout=8m30s"}},
		{"no timeout", nil, []string{"-test.timeout=8m30s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := guestArgs(tt.give, 8*time.Minute+30*time.Second); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("guestArgs(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

// TestRunScript runs the script on the host with sh as the program: it must
// see exactly the given environment and arguments, quotes and newlines
// included, in the given directory.
func TestRunScript(t *testing.T) {
	dir := t.TempDir()
	env := []string{"A=it's", "B=two\nlines", `C=$HOME "x"`}
	prog := `printf '[%s]' "$A" "$B" "$C" "${HOME-no home}" "$(pwd)" "$@"`
	script := RunScript(dir, env, "/bin/sh", []string{"-c", prog, "sh", "a b", "'q'"})
	out, err := exec.Command("/bin/sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, script)
	}
	want := "[it's][two\nlines][$HOME \"x\"][no home][" + dir + "][a b]['q']"
	if string(out) != want {
		t.Errorf("script printed %q, want %q\nscript:\n%s", out, want, script)
	}
}

// fakeBzImage wraps payload as a bzImage of boot protocol 2.15 would.
func fakeBzImage(payload []byte) []byte {
	const setupSects = 3
	img := make([]byte, (setupSects+1)*512)
	img[0x1f1] = setupSects
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x20f)
	const offset = 100
	binary.LittleEndian.PutUint32(img[0x248:], offset)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	img = append(img, make([]byte, offset)...)
	img = append(img, payload...)
	return append(img, make([]byte, 64)...)
}

func TestUnpackBzImage(t *testing.T) {
	kernel := bytes.Repeat([]byte("ELF kernel "), 1000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(kernel)
	zw.Close()
	withSize := binary.LittleEndian.AppendUint32(gz.Bytes(), uint32(len(kernel)))
	got, err := unpackBzImage(fakeBzImage(withSize))
	if err != nil || !bytes.Equal(got, kernel) {
		t.Errorf("unpackBzImage: %d bytes, %v; want the %d bytes of the kernel", len(got), err, len(kernel))
	}

	wrongSize := binary.LittleEndian.AppendUint32(gz.Bytes(), uint32(len(kernel)+1))
	if _, err := unpackBzImage(fakeBzImage(wrongSize)); err == nil {
		t.Error("unpackBzImage with a size the payload does not match: no error")
	}
	if _, err := unpackBzImage([]byte("not a kernel")); err == nil {
		t.Error("unpackBzImage of garbage: no error")
	}
	lz4 := binary.LittleEndian.AppendUint32([]byte{0x02, 0x21, 0x4c, 0x18, 1, 2, 3, 4}, 10)
	if _, err := unpackBzImage(fakeBzImage(lz4)); err == nil {
		t.Error("unpackBzImage of an lz4 payload: no error")
	}
}

// TestRequireUnderCI runs this test binary again with a made-up reason the
// lab cannot run: a lab test skips, and under CI=true fails.
func TestRequireUnderCI(t *testing.T) {
	if os.Getenv("LAB_REQUIRE_HELPER") == "1" {
		skipReason = "lab: made up for the test"
		Require(t)
		t.Log("Require returned")
		return
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequireUnderCI$", "-test.v")
		cmd.Env = append(os.Environ(), "LAB_REQUIRE_HELPER=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP") || !strings.Contains(string(out), "made up")):
			t.Errorf("without CI: %v, want a skip with the reason:\n%s", err, out)
		case ci == "true" && (err == nil || !strings.Contains(string(out), "--- FAIL") || !strings.Contains(string(out), "made up")):
			t.Errorf("CI=true: %v, want a failure with the reason:\n%s", err, out)
		}
		if strings.Contains(string(out), "Require returned") {
			t.Errorf("CI=%q: Require let the test go on:\n%s", ci, out)
		}
	}
}
