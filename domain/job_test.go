package domain_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

func TestJobKindNames(t *testing.T) {
	t.Parallel()
	want := []string{"build", "clone", "wipe", "upload", "download"}
	if len(domain.JobKinds) != len(want) {
		t.Fatalf("JobKinds has %d kinds, want %d", len(domain.JobKinds), len(want))
	}
	for i, k := range domain.JobKinds {
		if got := k.String(); got != want[i] {
			t.Errorf("JobKinds[%d].String() = %q, want %q", i, got, want[i])
		}
	}
	if got := domain.JobKind(0).String(); got != "unknown" {
		t.Errorf("JobKind(0).String() = %q, want unknown", got)
	}
}

func TestStreamTotal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                          string
		giveOffset, giveLen, giveSize uint64
		want                          uint64
	}{
		{"whole volume", 0, 0, 100, 100},
		{"rest from offset", 30, 0, 100, 70},
		{"length inside", 30, 20, 100, 20},
		{"length past the end", 30, 90, 100, 70},
		{"offset at the end", 100, 0, 100, 0},
		{"offset past the end", 120, 10, 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := domain.StreamTotal(tt.giveOffset, tt.giveLen, tt.giveSize); got != tt.want {
				t.Errorf("StreamTotal(%d, %d, %d) = %d, want %d", tt.giveOffset, tt.giveLen, tt.giveSize, got, tt.want)
			}
		})
	}
}
