package bench_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/cmd/virtstorage-bench/internal/bench"
)

func TestParseURI(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	tests := []struct {
		name    string
		giveURI string
		want    bench.Endpoint
		wantErr bool
	}{
		{
			name:    "socket param",
			giveURI: "storage:///system?socket=/tmp/x/run/libvirt/virtstoraged-sock",
			want:    bench.Endpoint{Socket: "/tmp/x/run/libvirt/virtstoraged-sock", Name: "storage:///system"},
		},
		{
			name:    "libvirtd anchor socket",
			giveURI: "storage:///system?socket=/tmp/libvirt-anchor/run/libvirt-sock",
			want:    bench.Endpoint{Socket: "/tmp/libvirt-anchor/run/libvirt-sock", Name: "storage:///system"},
		},
		{
			name:    "transport suffix is dropped from the name",
			giveURI: "storage+unix:///system?socket=/s",
			want:    bench.Endpoint{Socket: "/s", Name: "storage:///system"},
		},
		{
			name:    "other params are kept",
			giveURI: "storage:///system?socket=/s&mode=direct",
			want:    bench.Endpoint{Socket: "/s", Name: "storage:///system?mode=direct"},
		},
		{
			name:    "escaped socket path",
			giveURI: "storage:///system?socket=/tmp/a%20b/sock",
			want:    bench.Endpoint{Socket: "/tmp/a b/sock", Name: "storage:///system"},
		},
		{
			name:    "session default socket",
			giveURI: "storage:///session",
			want:    bench.Endpoint{Socket: "/run/user/1000/libvirt/virtstoraged-sock", Name: "storage:///session"},
		},
		{name: "remote host", giveURI: "storage://host/system?socket=/s", wantErr: true},
		{name: "bad path", giveURI: "storage:///embed?socket=/s", wantErr: true},
		{name: "no scheme", giveURI: "/run/libvirt/virtstoraged-sock", wantErr: true},
		{name: "unparsable", giveURI: "storage:///system?socket=%zz", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bench.ParseURI(tt.giveURI)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseURI(%q) error = %v, wantErr %v", tt.giveURI, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("ParseURI(%q) = %+v, want %+v", tt.giveURI, got, tt.want)
			}
		})
	}
}

func TestParseURISystemDefault(t *testing.T) {
	got, err := bench.ParseURI("storage:///system")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "storage:///system" {
		t.Errorf("Name = %q, want storage:///system", got.Name)
	}
	if got.Socket != "/run/libvirt/virtstoraged-sock" && got.Socket != "/run/libvirt/libvirt-sock" {
		t.Errorf("Socket = %q, want one of the system sockets", got.Socket)
	}
}

func TestSocketURIRoundTrip(t *testing.T) {
	const sock = "/tmp/vsb123/run/libvirt/virtstoraged-sock"
	got, err := bench.ParseURI(bench.SocketURI(sock))
	if err != nil {
		t.Fatal(err)
	}
	if got.Socket != sock {
		t.Errorf("Socket = %q, want %q", got.Socket, sock)
	}
}
