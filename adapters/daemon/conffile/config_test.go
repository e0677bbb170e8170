package conffile_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/conffile"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := conffile.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.UnixSockROMode() != 0o777 || c.UnixSockRWMode() != 0o700 || c.UnixSockAdminMode() != 0o700 {
		t.Fatalf("default modes = %o %o %o", c.UnixSockROMode(), c.UnixSockRWMode(), c.UnixSockAdminMode())
	}
	want := conffile.Config{
		UnixSockROPerms: "0777", UnixSockRWPerms: "0700", UnixSockAdminPerms: "0700",
		AuthUnixRO: "none", AuthUnixRW: "none",
		MaxClients: 5000, MaxQueuedClients: 1000, MaxAnonymousClients: 20,
		MinWorkers: 5, MaxWorkers: 20, PrioWorkers: 5, MaxClientRequests: 5,
		AdminMaxClients: 5000, AdminMaxQueuedClients: 5, AdminMinWorkers: 1, AdminMaxWorkers: 5, AdminMaxClientRequests: 5,
		LogLevel:          3,
		KeepaliveInterval: 5, KeepaliveCount: 5, AdminKeepaliveInterval: 5, AdminKeepaliveCount: 5,
		RBDTimeout: 30, RBDListingTTL: 5,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("Defaults() = %+v\nwant %+v", *c, want)
	}
}

func TestLoadEveryKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give string
		want func(c *conffile.Config)
	}{
		{"unix_sock_group", `unix_sock_group = "libvirt"`, func(c *conffile.Config) { c.UnixSockGroup = "libvirt" }},
		{"unix_sock_ro_perms", `unix_sock_ro_perms = "0770"`, func(c *conffile.Config) { c.UnixSockROPerms = "0770" }},
		{"unix_sock_rw_perms", `unix_sock_rw_perms = "0770"`, func(c *conffile.Config) { c.UnixSockRWPerms = "0770" }},
		{"unix_sock_admin_perms", `unix_sock_admin_perms = "0750"`, func(c *conffile.Config) { c.UnixSockAdminPerms = "0750" }},
		{"unix_sock_dir", `unix_sock_dir = "/tmp/s"`, func(c *conffile.Config) { c.UnixSockDir = "/tmp/s" }},
		{"auth_unix_ro", `auth_unix_ro = "polkit"`, func(c *conffile.Config) { c.AuthUnixRO = "polkit" }},
		// libvirt opens the read-write socket to all when polkit decides...
		{"auth_unix_rw", `auth_unix_rw = "polkit"`, func(c *conffile.Config) { c.AuthUnixRW = "polkit"; c.UnixSockRWPerms = "0777" }},
		// ...unless the file sets its permissions, wherever it says so.
		{"auth_unix_rw with perms", "unix_sock_rw_perms = \"0770\"\nauth_unix_rw = \"polkit\"", func(c *conffile.Config) { c.AuthUnixRW = "polkit"; c.UnixSockRWPerms = "0770" }},
		{"auth_unix_rw none", `auth_unix_rw = "none"`, func(c *conffile.Config) {}},
		{"max_clients", `max_clients = 100`, func(c *conffile.Config) { c.MaxClients = 100 }},
		{"max_queued_clients", `max_queued_clients = 10`, func(c *conffile.Config) { c.MaxQueuedClients = 10 }},
		{"max_anonymous_clients", `max_anonymous_clients = 7`, func(c *conffile.Config) { c.MaxAnonymousClients = 7 }},
		{"min_workers", `min_workers = 2`, func(c *conffile.Config) { c.MinWorkers = 2 }},
		{"max_workers", `max_workers = 40`, func(c *conffile.Config) { c.MaxWorkers = 40 }},
		{"prio_workers", `prio_workers = 0`, func(c *conffile.Config) { c.PrioWorkers = 0 }},
		{"max_client_requests", `max_client_requests = 9`, func(c *conffile.Config) { c.MaxClientRequests = 9 }},
		{"admin_max_clients", `admin_max_clients = 3`, func(c *conffile.Config) { c.AdminMaxClients = 3 }},
		{"admin_max_queued_clients", `admin_max_queued_clients = 3`, func(c *conffile.Config) { c.AdminMaxQueuedClients = 3 }},
		{"admin_min_workers", `admin_min_workers = 2`, func(c *conffile.Config) { c.AdminMinWorkers = 2 }},
		{"admin_max_workers", `admin_max_workers = 8`, func(c *conffile.Config) { c.AdminMaxWorkers = 8 }},
		{"admin_max_client_requests", `admin_max_client_requests = 2`, func(c *conffile.Config) { c.AdminMaxClientRequests = 2 }},
		{"log_level", `log_level = 1`, func(c *conffile.Config) { c.LogLevel = 1 }},
		{"log_filters", `log_filters = "1:storage 3:rpc"`, func(c *conffile.Config) { c.LogFilters = "1:storage 3:rpc" }},
		{"log_outputs", `log_outputs = "1:file:/var/log/x.log"`, func(c *conffile.Config) { c.LogOutputs = "1:file:/var/log/x.log" }},
		{"keepalive_interval", `keepalive_interval = -0`, func(c *conffile.Config) { c.KeepaliveInterval = 0 }},
		{"keepalive_count", `keepalive_count = 0`, func(c *conffile.Config) { c.KeepaliveCount = 0 }},
		{"admin_keepalive_interval", `admin_keepalive_interval = 10`, func(c *conffile.Config) { c.AdminKeepaliveInterval = 10 }},
		{"admin_keepalive_count", `admin_keepalive_count = 1`, func(c *conffile.Config) { c.AdminKeepaliveCount = 1 }},
		{"metrics_listen", `metrics_listen = "127.0.0.1:9177"`, func(c *conffile.Config) { c.MetricsListen = "127.0.0.1:9177" }},
		{"secret_driver_socket", `secret_driver_socket = "/run/libvirt/libvirt-sock"`, func(c *conffile.Config) { c.SecretDriverSocket = "/run/libvirt/libvirt-sock" }},
		{"secret_driver_uri", `secret_driver_uri = "secret:///system"`, func(c *conffile.Config) { c.SecretDriverURI = "secret:///system" }},
		{"secret_driver_token_file", `secret_driver_token_file = "/x/system.token"`, func(c *conffile.Config) { c.SecretDriverTokenFile = "/x/system.token" }},
		{"rbd_timeout", `rbd_timeout = 10`, func(c *conffile.Config) { c.RBDTimeout = 10 }},
		{"rbd_listing_ttl", `rbd_listing_ttl = 0`, func(c *conffile.Config) { c.RBDListingTTL = 0 }},
		{"memory_limit", `memory_limit = "512MiB"`, func(c *conffile.Config) { c.MemoryLimit = "512MiB" }},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, warnings, err := conffile.LoadBytes("v.conf", []byte(tt.give+"\n"))
			if err != nil {
				t.Fatalf("LoadBytes() error = %v", err)
			}
			if len(warnings) != 0 {
				t.Fatalf("unexpected warnings %q", warnings)
			}
			want := conffile.Defaults()
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("LoadBytes() = %+v\nwant %+v", got, want)
			}
		})
	}
	for _, k := range conffile.Keys() {
		if !seen[k] {
			t.Errorf("key %q has no test case", k)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{"string for int", "\nmax_clients = \"5\"", `conffile: v.conf:2: key "max_clients": expected an integer, got string`},
		{"int for string", "unix_sock_group = 0", `conffile: v.conf:1: key "unix_sock_group": expected a string, got integer`},
		{"list for string", `log_outputs = [ "1:stderr" ]`, `conffile: v.conf:1: key "log_outputs": expected a string, got list`},
		{"negative int", "max_workers = -1", `conffile: v.conf:1: key "max_workers": -1 out of range (0 to 2147483647)`},
		{"sasl", `auth_unix_ro = "sasl"`, `conffile: v.conf: auth_unix_ro: unsupported auth sasl`},
		{"sasl rw", `auth_unix_rw = "sasl"`, `conffile: v.conf: auth_unix_rw: unsupported auth sasl`},
		{"unknown auth", `auth_unix_ro = "tls"`, `auth_unix_ro: unsupported auth tls`},
		{"bad perms", `unix_sock_rw_perms = "0799"`, `unix_sock_rw_perms: "0799" is not an octal permission`},
		{"perms too wide", `unix_sock_ro_perms = "7777"`, `unix_sock_ro_perms: "7777" is not an octal permission`},
		{"log level low", `log_level = 0`, `log_level: 0 not in 1 (debug) to 4 (error)`},
		{"log level high", `log_level = 5`, `log_level: 5 not in 1 (debug) to 4 (error)`},
		{"workers inverted", "min_workers = 30\nmax_workers = 10", `min_workers (30) greater than max_workers (10)`},
		{"admin workers inverted", "admin_min_workers = 9", `admin_min_workers (9) greater than admin_max_workers (5)`},
		{"zero requests", "max_client_requests = 0", `max_client_requests must be at least 1`},
		{"syntax", "max_clients = ", `conffile: v.conf:1: expected value after '='`},
		{"metrics on every address", `metrics_listen = ":9177"`, `metrics_listen: ":9177": only a loopback address (127.0.0.1, [::1]) is allowed`},
		{"metrics on a public address", `metrics_listen = "192.0.2.1:9177"`, `metrics_listen: "192.0.2.1:9177": only a loopback address`},
		{"metrics on a host name", `metrics_listen = "localhost:9177"`, `metrics_listen: "localhost:9177": only a loopback address`},
		{"metrics on all IPv6", `metrics_listen = "[::]:9177"`, `only a loopback address`},
		{"metrics without port", `metrics_listen = "127.0.0.1"`, `metrics_listen: "127.0.0.1": want "unix:/PATH" or a loopback "IP:PORT"`},
		{"metrics port zero", `metrics_listen = "127.0.0.1:0"`, `"0" is not a port number (1 to 65535)`},
		{"metrics port name", `metrics_listen = "127.0.0.1:http"`, `"http" is not a port number`},
		{"metrics relative socket", `metrics_listen = "unix:metrics.sock"`, `metrics_listen: "unix:metrics.sock": the socket path must be absolute`},
		{"secret uri", `secret_driver_uri = "qemu:///system"`, `secret_driver_uri: "qemu:///system" is not a secret driver URI`},
		{"secret socket relative", `secret_driver_socket = "libvirt-sock"`, `secret_driver_socket: "libvirt-sock" is not an absolute path`},
		{"token relative", `secret_driver_token_file = "t"`, `secret_driver_token_file: "t" is not an absolute path`},
		{"memory limit as int", "memory_limit = 512", `key "memory_limit": expected a string, got integer`},
		{"memory limit unit", `memory_limit = "512M"`, `memory_limit: "512M" is not a size such as "512MiB"`},
		{"memory limit negative", `memory_limit = "-1GiB"`, `memory_limit: "-1GiB" is not a size`},
		{"memory limit sign", `memory_limit = "+1GiB"`, `memory_limit: "+1GiB" is not a size`},
		{"memory limit space", `memory_limit = "1 GiB"`, `memory_limit: "1 GiB" is not a size`},
		{"memory limit overflow", `memory_limit = "8388608TiB"`, `memory_limit: "8388608TiB" is not a size`},
		{"memory limit low", `memory_limit = "16MiB"`, `memory_limit: "16MiB" is below the minimum of 32MiB`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := conffile.LoadBytes("v.conf", []byte(tt.give))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadBytes() error = %v, want it to contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "v.conf") {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give        string
		wantNetwork string
		wantAddress string
	}{
		{"", "", ""},
		{"unix:/run/libvirt/virtstoraged-metrics.sock", "unix", "/run/libvirt/virtstoraged-metrics.sock"},
		{"unix:/run//x/../m.sock", "unix", "/run/m.sock"},
		{"127.0.0.1:9177", "tcp", "127.0.0.1:9177"},
		{"127.1.2.3:9177", "tcp", "127.1.2.3:9177"},
		{"[::1]:9177", "tcp", "[::1]:9177"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			c, _, err := conffile.LoadBytes("v.conf", []byte(`metrics_listen = "`+tt.give+`"`))
			if err != nil {
				t.Fatal(err)
			}
			n, a := c.MetricsAddr()
			if n != tt.wantNetwork || a != tt.wantAddress {
				t.Fatalf("MetricsAddr() = %q, %q; want %q, %q", n, a, tt.wantNetwork, tt.wantAddress)
			}
		})
	}
}

func TestLoadWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		give         string
		wantWarnings []string
		wantCheck    func(c *conffile.Config) bool
	}{
		{
			name:         "unknown key",
			give:         "listen_tls = 1\nmax_clients = 99\n",
			wantWarnings: []string{`v.conf:1: unknown key "listen_tls" ignored`},
			wantCheck:    func(c *conffile.Config) bool { return c.MaxClients == 99 },
		},
		{
			name:         "known libvirt key without effect",
			give:         "access_drivers = [ \"polkit\" ]\n",
			wantWarnings: []string{`v.conf:1: key "access_drivers" ignored: access control drivers are not supported`},
			wantCheck:    func(c *conffile.Config) bool { return true },
		},
		{
			name:         "duplicate first wins",
			give:         "max_clients = 90\nmax_clients = 10\n",
			wantWarnings: []string{`v.conf:2: duplicate key "max_clients" ignored, the one on line 1 wins`},
			wantCheck:    func(c *conffile.Config) bool { return c.MaxClients == 90 },
		},
		{
			name:         "anonymous clients clamped",
			give:         "max_clients = 10\n",
			wantWarnings: []string{`v.conf: max_anonymous_clients (20) lowered to max_clients (10)`},
			wantCheck:    func(c *conffile.Config) bool { return c.MaxAnonymousClients == 10 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, warnings, err := conffile.LoadBytes("v.conf", []byte(tt.give))
			if err != nil {
				t.Fatalf("LoadBytes() error = %v", err)
			}
			if !reflect.DeepEqual(warnings, tt.wantWarnings) {
				t.Fatalf("warnings = %q, want %q", warnings, tt.wantWarnings)
			}
			if !tt.wantCheck(c) {
				t.Fatalf("config %+v does not hold the expected value", c)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.conf")

	c, warnings, err := conffile.Load(missing, false)
	if err != nil || len(warnings) != 0 || !reflect.DeepEqual(c, conffile.Defaults()) {
		t.Fatalf("Load(missing default) = %+v, %q, %v; want defaults", c, warnings, err)
	}
	if _, _, err := conffile.Load(missing, true); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Load(missing explicit) error = %v, want one naming %s", err, missing)
	}

	path := filepath.Join(dir, "virtstoraged.conf")
	if err := os.WriteFile(path, []byte("unix_sock_group = \"kvm\"\nunix_sock_rw_perms = \"0770\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _, err = conffile.Load(path, true)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if c.UnixSockGroup != "kvm" || c.UnixSockRWMode() != fs.FileMode(0o770) {
		t.Fatalf("Load() = %+v", c)
	}
}

// TestSampleConfig keeps dist/virtstoraged.conf honest: it must load, and
// uncommenting every setting it documents must give back the defaults.
func TestSampleConfig(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../../dist/virtstoraged.conf")
	if err != nil {
		t.Fatal(err)
	}
	if _, warnings, err := conffile.LoadBytes("virtstoraged.conf", src); err != nil || len(warnings) != 0 {
		t.Fatalf("sample as shipped: warnings %q, err %v", warnings, err)
	}
	var b strings.Builder
	documented := map[string]bool{}
	for _, line := range strings.Split(string(src), "\n") {
		// Settings are written "#key = value" with no space after '#';
		// prose comments have one.
		if rest, ok := strings.CutPrefix(line, "#"); ok && rest != "" && rest[0] != ' ' && rest[0] != '#' && strings.Contains(rest, "=") {
			b.WriteString(rest + "\n")
			documented[strings.TrimSpace(strings.SplitN(rest, "=", 2)[0])] = true
		}
	}
	c, warnings, err := conffile.LoadBytes("uncommented", []byte(b.String()))
	if err != nil || len(warnings) != 0 {
		t.Fatalf("uncommented sample: warnings %q, err %v", warnings, err)
	}
	if c.UnixSockDir != "/run/libvirt" {
		t.Fatalf("sample unix_sock_dir = %q, want libvirt's /run/libvirt", c.UnixSockDir)
	}
	// The empty defaults stand for "per mode", which the sample spells out
	// for a system daemon.
	if c.SecretDriverURI != "secret:///system" || c.SecretDriverTokenFile != "/run/libvirt/common/system.token" {
		t.Fatalf("sample secret driver settings %q %q, want libvirt's", c.SecretDriverURI, c.SecretDriverTokenFile)
	}
	c.UnixSockDir, c.SecretDriverURI, c.SecretDriverTokenFile = "", "", ""
	if !reflect.DeepEqual(c, conffile.Defaults()) {
		t.Fatalf("uncommented sample = %+v, want defaults", c)
	}
	for _, k := range conffile.Keys() {
		if !documented[k] {
			t.Errorf("key %q is not documented in dist/virtstoraged.conf", k)
		}
	}
}

func TestManPageListsEveryKey(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../docs/virtstoraged.8.rst")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range conffile.Keys() {
		if !strings.Contains(string(b), "``"+k+"``") {
			t.Errorf("key %q missing from docs/virtstoraged.8.rst", k)
		}
	}
}

func TestMemoryLimitBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want int64
	}{
		{"", 0},
		{"33554432", 32 << 20},
		{"33554432B", 32 << 20},
		{"32768KiB", 32 << 20},
		{"512MiB", 512 << 20},
		{"2GiB", 2 << 30},
		{"1TiB", 1 << 40},
	}
	for _, tt := range tests {
		c, _, err := conffile.LoadBytes("v.conf", []byte("memory_limit = \""+tt.give+"\""))
		if err != nil {
			t.Errorf("memory_limit %q: %v", tt.give, err)
			continue
		}
		if got := c.MemoryLimitBytes(); got != tt.want {
			t.Errorf("memory_limit %q = %d bytes, want %d", tt.give, got, tt.want)
		}
	}
}
