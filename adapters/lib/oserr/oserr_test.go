package oserr_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

func TestSystemReadsAsStrerror(t *testing.T) {
	t.Parallel()
	err := oserr.System(syscall.ENOENT, "cannot open directory '%s'", "/x")
	if err.Error() != "cannot open directory '/x': No such file or directory" || err.Errno != int32(syscall.ENOENT) || err.Kind != domain.KindSystem {
		t.Fatalf("got %q errno %d kind %d", err.Error(), err.Errno, err.Kind)
	}
}

func TestCommand(t *testing.T) {
	t.Parallel()
	r := osexec.New(nil)
	tests := []struct {
		name     string
		giveCmd  ports.Command
		wantKind domain.Kind
		wantText string
	}{
		{name: "missing program", giveCmd: ports.Command{Path: "no-such-tool-vs"},
			wantKind: domain.KindSystem, wantText: "Cannot find 'no-such-tool-vs' in path: No such file or directory"},
		{name: "failing program", giveCmd: ports.Command{Path: "sh", Args: []string{"-c", "echo oops >&2; exit 3"}},
			wantKind: domain.KindInternal, wantText: "internal error: Child process (sh -c 'echo oops >&2; exit 3') unexpected exit status 3: oops\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Run(context.Background(), tt.giveCmd)
			if err == nil {
				t.Fatal("no error")
			}
			got := oserr.Command(err, append([]string{tt.giveCmd.Path}, tt.giveCmd.Args...))
			if got.Kind != tt.wantKind || got.Error() != tt.wantText {
				t.Errorf("got kind %d %q, want kind %d %q", got.Kind, got.Error(), tt.wantKind, tt.wantText)
			}
			// vircommand.c reports with no error domain.
			if d := got.ErrorDomain(); d != domain.FromNone {
				t.Errorf("error domain %d, want %d", d, domain.FromNone)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give []string
		want string
	}{
		// libvirt's debug log of a disk pool's mkpart.
		{[]string{"parted", "/dev/loop0", "mkpart", "--script", "primary ext2", "1024B", "10705919B"}, "parted /dev/loop0 mkpart --script 'primary ext2' 1024B 10705919B"},
		{[]string{"lvs", "--separator", "#", "vg"}, "lvs --separator '#' vg"},
		{[]string{"echo", "", "it's"}, `echo '' 'it'\''s'`},
		{[]string{"mount", "-o", "nodev,nosuid", "a=b:/x"}, "mount -o nodev,nosuid a=b:/x"},
	}
	for _, tt := range tests {
		if got := oserr.CommandLine(tt.give); got != tt.want {
			t.Errorf("CommandLine(%q) = %s, want %s", tt.give, got, tt.want)
		}
	}
}
