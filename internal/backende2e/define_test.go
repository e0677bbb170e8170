package backende2e_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestDefineRequiresSource checks libvirt's define-time errors for fs,
// netfs and logical pools that lack what their backend needs; no pool is
// left defined.
func TestDefineRequiresSource(t *testing.T) {
	d := startDaemon(t, testkit.DaemonOptions{})
	tests := []struct {
		name     string
		giveArgs []string
		wantErr  string
	}{
		{
			name:     "fs without device",
			giveArgs: []string{"pool-define-as", "f1", "fs", "--target", "/tmp/f1"},
			wantErr:  "error: XML error: missing storage pool source device name",
		},
		{
			name:     "netfs without host",
			giveArgs: []string{"pool-define-as", "n1", "netfs", "--source-path", "/export", "--target", "/tmp/n1"},
			wantErr:  "error: XML error: missing storage pool source host name",
		},
		{
			name:     "netfs without path",
			giveArgs: []string{"pool-define-as", "n2", "netfs", "--source-host", "127.0.0.1", "--target", "/tmp/n2"},
			wantErr:  "error: XML error: missing storage pool source path",
		},
		{
			name:     "fs without target",
			giveArgs: []string{"pool-define-as", "f2", "fs", "--source-dev", "/dev/loop7"},
			wantErr:  "error: XML error: missing storage pool target path",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			virshErr(t, d, []string{"error: Failed to define pool " + tc.giveArgs[1], tc.wantErr}, tc.giveArgs...)
		})
	}
	if out := virshOK(t, d, "pool-list", "--all", "--name"); out != "\n" && out != "" {
		t.Errorf("pool-list --all after failed defines: %q, want none", out)
	}
}
