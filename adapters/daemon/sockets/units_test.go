package sockets_test

import (
	"os"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/sockets"
)

// TestSystemdUnits keeps dist/systemd in step with FromSystemd: each socket
// unit must name its fd the way FromSystemd looks for it, listen where the
// daemon would, and start our service.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		giveUnit   string
		wantName   string
		wantListen string
		wantMode   string
	}{
		{"virtstoraged.socket", sockets.FDNameRW, "/run/libvirt/virtstoraged-sock", "0600"},
		{"virtstoraged-ro.socket", sockets.FDNameRO, "/run/libvirt/virtstoraged-sock-ro", "0666"},
		{"virtstoraged-admin.socket", sockets.FDNameAdmin, "/run/libvirt/virtstoraged-admin-sock", "0600"},
	}
	for _, tt := range tests {
		t.Run(tt.giveUnit, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile("../../../dist/systemd/" + tt.giveUnit)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
					got[k] = v
				}
			}
			for k, want := range map[string]string{
				"FileDescriptorName": tt.wantName,
				"ListenStream":       tt.wantListen,
				"SocketMode":         tt.wantMode,
				"Service":            "virtstoraged.service",
			} {
				if got[k] != want {
					t.Errorf("%s: %s=%q, want %q", tt.giveUnit, k, got[k], want)
				}
			}
			// The fd name systemd uses without FileDescriptorName= is the
			// unit name, so both spellings agree.
			if tt.giveUnit != tt.wantName {
				t.Errorf("unit %s would be named %s by default", tt.giveUnit, tt.wantName)
			}
		})
	}
}
