package process_test

import (
	"reflect"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/process"
)

func TestNewPaths(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	system := process.Paths{
		ConfigFile:       "/etc/libvirt/virtstoraged.conf",
		StorageConfigDir: "/etc/libvirt/storage",
		AutostartDir:     "/etc/libvirt/storage/autostart",
		StatusDir:        "/run/libvirt/storage",
		SockDir:          "/run/libvirt",
		SockRW:           "/run/libvirt/virtstoraged-sock",
		SockRO:           "/run/libvirt/virtstoraged-sock-ro",
		SockAdmin:        "/run/libvirt/virtstoraged-admin-sock",
		PidFile:          "/run/virtstoraged.pid",
		LogDir:           "/var/log/libvirt",
		Privileged:       true,
	}
	tests := []struct {
		name        string
		give        process.PathsOptions
		giveSockDir string
		want        process.Paths
		wantErr     bool
	}{
		{name: "root", give: process.PathsOptions{Privileged: true, Home: "/root"}, want: system},
		{
			name: "root with --root",
			give: process.PathsOptions{Privileged: true, Root: "/srv/t"},
			want: process.Paths{
				ConfigFile:       "/srv/t/etc/libvirt/virtstoraged.conf",
				StorageConfigDir: "/srv/t/etc/libvirt/storage",
				AutostartDir:     "/srv/t/etc/libvirt/storage/autostart",
				StatusDir:        "/srv/t/run/libvirt/storage",
				SockDir:          "/srv/t/run/libvirt",
				SockRW:           "/srv/t/run/libvirt/virtstoraged-sock",
				SockRO:           "/srv/t/run/libvirt/virtstoraged-sock-ro",
				SockAdmin:        "/srv/t/run/libvirt/virtstoraged-admin-sock",
				PidFile:          "/srv/t/run/virtstoraged.pid",
				LogDir:           "/srv/t/var/log/libvirt",
				Privileged:       true,
			},
		},
		{
			name: "non-root with --root uses the system layout",
			give: process.PathsOptions{Root: "/tmp/r/", Getenv: env(map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"})},
			want: process.Paths{
				ConfigFile:       "/tmp/r/etc/libvirt/virtstoraged.conf",
				StorageConfigDir: "/tmp/r/etc/libvirt/storage",
				AutostartDir:     "/tmp/r/etc/libvirt/storage/autostart",
				StatusDir:        "/tmp/r/run/libvirt/storage",
				SockDir:          "/tmp/r/run/libvirt",
				SockRW:           "/tmp/r/run/libvirt/virtstoraged-sock",
				SockRO:           "/tmp/r/run/libvirt/virtstoraged-sock-ro",
				SockAdmin:        "/tmp/r/run/libvirt/virtstoraged-admin-sock",
				PidFile:          "/tmp/r/run/virtstoraged.pid",
				LogDir:           "/tmp/r/var/log/libvirt",
				Privileged:       true,
			},
		},
		{
			name: "non-root with XDG variables",
			give: process.PathsOptions{Home: "/home/u", Getenv: env(map[string]string{
				"XDG_CONFIG_HOME": "/home/u/cfg", "XDG_RUNTIME_DIR": "/run/user/1000", "XDG_CACHE_HOME": "/home/u/cache",
			})},
			want: process.Paths{
				ConfigFile:       "/home/u/cfg/libvirt/virtstoraged.conf",
				StorageConfigDir: "/home/u/cfg/libvirt/storage",
				AutostartDir:     "/home/u/cfg/libvirt/storage/autostart",
				StatusDir:        "/run/user/1000/libvirt/storage",
				SockDir:          "/run/user/1000/libvirt",
				SockRW:           "/run/user/1000/libvirt/virtstoraged-sock",
				SockAdmin:        "/run/user/1000/libvirt/virtstoraged-admin-sock",
				PidFile:          "/run/user/1000/libvirt/virtstoraged.pid",
				LogDir:           "/home/u/cache/libvirt",
			},
		},
		{
			name: "non-root without XDG variables",
			give: process.PathsOptions{Home: "/home/u", Getenv: env(nil)},
			want: process.Paths{
				ConfigFile:       "/home/u/.config/libvirt/virtstoraged.conf",
				StorageConfigDir: "/home/u/.config/libvirt/storage",
				AutostartDir:     "/home/u/.config/libvirt/storage/autostart",
				StatusDir:        "/home/u/.cache/libvirt/storage",
				SockDir:          "/home/u/.cache/libvirt",
				SockRW:           "/home/u/.cache/libvirt/virtstoraged-sock",
				SockAdmin:        "/home/u/.cache/libvirt/virtstoraged-admin-sock",
				PidFile:          "/home/u/.cache/libvirt/virtstoraged.pid",
				LogDir:           "/home/u/.cache/libvirt",
			},
		},
		{
			name: "non-root relative XDG ignored",
			give: process.PathsOptions{Home: "/home/u", Getenv: env(map[string]string{"XDG_CONFIG_HOME": "cfg", "XDG_RUNTIME_DIR": "run"})},
			want: process.Paths{
				ConfigFile:       "/home/u/.config/libvirt/virtstoraged.conf",
				StorageConfigDir: "/home/u/.config/libvirt/storage",
				AutostartDir:     "/home/u/.config/libvirt/storage/autostart",
				StatusDir:        "/home/u/.cache/libvirt/storage",
				SockDir:          "/home/u/.cache/libvirt",
				SockRW:           "/home/u/.cache/libvirt/virtstoraged-sock",
				SockAdmin:        "/home/u/.cache/libvirt/virtstoraged-admin-sock",
				PidFile:          "/home/u/.cache/libvirt/virtstoraged.pid",
				LogDir:           "/home/u/.cache/libvirt",
			},
		},
		{name: "non-root without home", give: process.PathsOptions{Getenv: env(nil)}, wantErr: true},
		{
			name:        "unix_sock_dir overrides root sockets",
			give:        process.PathsOptions{Privileged: true},
			giveSockDir: "/var/lib/socks",
			want: func() process.Paths {
				p := system
				p.SockDir = "/var/lib/socks"
				p.SockRW = "/var/lib/socks/virtstoraged-sock"
				p.SockRO = "/var/lib/socks/virtstoraged-sock-ro"
				p.SockAdmin = "/var/lib/socks/virtstoraged-admin-sock"
				return p
			}(),
		},
		{
			name:        "unix_sock_dir overrides session sockets, still no ro",
			give:        process.PathsOptions{Home: "/home/u", Getenv: env(map[string]string{"XDG_RUNTIME_DIR": "/run/user/7"})},
			giveSockDir: "/tmp/s",
			want: process.Paths{
				ConfigFile:       "/home/u/.config/libvirt/virtstoraged.conf",
				StorageConfigDir: "/home/u/.config/libvirt/storage",
				AutostartDir:     "/home/u/.config/libvirt/storage/autostart",
				StatusDir:        "/run/user/7/libvirt/storage",
				SockDir:          "/tmp/s",
				SockRW:           "/tmp/s/virtstoraged-sock",
				SockAdmin:        "/tmp/s/virtstoraged-admin-sock",
				PidFile:          "/run/user/7/libvirt/virtstoraged.pid",
				LogDir:           "/home/u/.cache/libvirt",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := process.NewPaths(tt.give)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewPaths() = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPaths() error = %v", err)
			}
			got = got.WithSockDir(tt.giveSockDir)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("NewPaths() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestPathsLogFile(t *testing.T) {
	t.Parallel()
	p, err := process.NewPaths(process.PathsOptions{Root: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.LogFile(); got != "/x/var/log/libvirt/virtstoraged.log" {
		t.Fatalf("LogFile() = %q", got)
	}
}
