package logical

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		giveCode   int
		giveStderr string // testdata file or literal text
		wantKind   domain.Kind
	}{
		{name: "no space", giveCode: 5, giveStderr: "@lvcreate-nospace.stderr", wantKind: domain.KindOperationFailed},
		{name: "LV exists", giveCode: 5, giveStderr: "@lvcreate-exists.stderr", wantKind: domain.KindOperationFailed},
		{name: "VG exists", giveCode: 5, giveStderr: "@vgcreate-inuse.stderr", wantKind: domain.KindOperationFailed},
		{name: "LV missing", giveCode: 5, giveStderr: "@lvremove-missing.stderr", wantKind: domain.KindNoStorageVol},
		{name: "VG missing", giveCode: 5, giveStderr: "@vgs-missing.stderr", wantKind: domain.KindOperationFailed},
		{name: "open LV", giveCode: 5, giveStderr: "  Logical volume vg/lv contains a filesystem in use.", wantKind: domain.KindOperationInvalid},
		{name: "bad command line", giveCode: 3, giveStderr: "  Option --zero is unsupported with snapshots.", wantKind: domain.KindInternal},
		// lvm2 also exits 3 when the kernel lacks a device-mapper target.
		{name: "missing dm target", giveCode: 3, giveStderr: "  striped: Required device-mapper target(s) not detected in your kernel.", wantKind: domain.KindInternal},
		{name: "unknown", giveCode: 5, giveStderr: "  something else", wantKind: domain.KindInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stderr := tt.giveStderr
			if name, ok := cutAt(stderr); ok {
				b, err := os.ReadFile(filepath.Join("testdata", name))
				if err != nil {
					t.Fatal(err)
				}
				stderr = string(b)
			}
			if got := classify(tt.giveCode, stderr); got != tt.wantKind {
				t.Errorf("classify = %v, want %v", got, tt.wantKind)
			}
		})
	}
}

func cutAt(s string) (string, bool) {
	if len(s) > 0 && s[0] == '@' {
		return s[1:], true
	}
	return "", false
}
