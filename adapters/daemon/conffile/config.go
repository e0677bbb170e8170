package conffile

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Config holds every virtstoraged.conf setting we act on, with libvirt's
// defaults for the keys that are absent.
type Config struct {
	// UnixSockGroup owns the sockets when set (a group name or numeric gid).
	UnixSockGroup string
	// UnixSockROPerms, UnixSockRWPerms and UnixSockAdminPerms are octal
	// strings as written in the file; the *Mode methods give them parsed.
	UnixSockROPerms    string
	UnixSockRWPerms    string
	UnixSockAdminPerms string
	// UnixSockDir overrides the directory of the sockets; empty keeps the
	// default for the mode the daemon runs in.
	UnixSockDir string

	// AuthUnixRO and AuthUnixRW are "none" or "polkit"; "sasl" and anything
	// else are refused at load, with libvirt's "unsupported auth" text.
	AuthUnixRO string
	AuthUnixRW string

	MaxClients          int
	MaxQueuedClients    int
	MaxAnonymousClients int
	MinWorkers          int
	MaxWorkers          int
	PrioWorkers         int
	MaxClientRequests   int

	AdminMaxClients        int
	AdminMaxQueuedClients  int
	AdminMinWorkers        int
	AdminMaxWorkers        int
	AdminMaxClientRequests int

	// LogLevel is libvirt's priority: 1 debug, 2 info, 3 warning, 4 error.
	LogLevel   int
	LogFilters string
	LogOutputs string

	KeepaliveInterval      int
	KeepaliveCount         int
	AdminKeepaliveInterval int
	AdminKeepaliveCount    int

	// MetricsListen is where Prometheus metrics are served: "" for nowhere
	// (the default), "unix:PATH" or a loopback "IP:PORT"; MetricsAddr gives
	// it parsed.
	MetricsListen string
	// SecretDriverSocket is the socket of libvirt's secret driver, which holds
	// the passphrases of encrypted volumes; empty picks virtsecretd's when it
	// exists, else libvirtd's, in the daemon's mode.
	SecretDriverSocket string
	// SecretDriverURI is the URI opened there; empty means secret:///system
	// (secret:///session for a session daemon).
	SecretDriverURI string
	// SecretDriverTokenFile is the system token libvirt's daemons share,
	// which lets the secret driver hand over private secrets; empty means
	// libvirt's place for the mode (/run/libvirt/common/system.token).
	SecretDriverTokenFile string
	// RBDTimeout bounds each call of an rbd pool to its Ceph cluster, in
	// seconds (our extension; libvirt's fixed value is 30).
	RBDTimeout int
	// RBDListingTTL is how many seconds a refresh's figures of an rbd pool
	// answer for a volume's info and XML; 0 re-reads the image every time,
	// as libvirt does (our extension).
	RBDListingTTL int
	// MemoryLimit is the Go runtime's soft memory limit as written, in
	// GOMEMLIMIT's syntax ("512MiB"); empty leaves the limit the process
	// started with. MemoryLimitBytes gives it parsed. Our extension.
	MemoryLimit string
}

// The values of auth_unix_ro and auth_unix_rw the daemon serves.
const (
	AuthNone   = "none"
	AuthPolkit = "polkit"
)

// Defaults returns the configuration libvirt uses when the file sets nothing,
// but for authentication: "none" (libvirt built with polkit starts root's
// daemons with "polkit" and a 0777 read-write socket; see the README).
func Defaults() *Config {
	return &Config{
		UnixSockROPerms:        "0777",
		UnixSockRWPerms:        "0700",
		UnixSockAdminPerms:     "0700",
		AuthUnixRO:             "none",
		AuthUnixRW:             "none",
		MaxClients:             5000,
		MaxQueuedClients:       1000,
		MaxAnonymousClients:    20,
		MinWorkers:             5,
		MaxWorkers:             20,
		PrioWorkers:            5,
		MaxClientRequests:      5,
		AdminMaxClients:        5000,
		AdminMaxQueuedClients:  5,
		AdminMinWorkers:        1,
		AdminMaxWorkers:        5,
		AdminMaxClientRequests: 5,
		LogLevel:               3,
		KeepaliveInterval:      5,
		KeepaliveCount:         5,
		AdminKeepaliveInterval: 5,
		AdminKeepaliveCount:    5,
		RBDTimeout:             30,
		RBDListingTTL:          5,
	}
}

// UnixSockROMode is UnixSockROPerms parsed; valid after Load or Validate.
func (c *Config) UnixSockROMode() fs.FileMode { return mustMode(c.UnixSockROPerms) }

// UnixSockRWMode is UnixSockRWPerms parsed; valid after Load or Validate.
func (c *Config) UnixSockRWMode() fs.FileMode { return mustMode(c.UnixSockRWPerms) }

// UnixSockAdminMode is UnixSockAdminPerms parsed; valid after Load or Validate.
func (c *Config) UnixSockAdminMode() fs.FileMode { return mustMode(c.UnixSockAdminPerms) }

func mustMode(s string) fs.FileMode {
	m, err := parsePerms(s)
	if err != nil {
		return 0o700 // the safe choice if a caller skipped Validate
	}
	return m
}

func parsePerms(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("%q is not an octal permission between 0 and 0777", s)
	}
	return fs.FileMode(n), nil
}

// MinMemoryLimit is the lowest memory_limit accepted: an idle daemon uses
// about 12 MiB, and under a limit close to that the collector would run
// without pause.
const MinMemoryLimit = 32 << 20

// MemoryLimitBytes is MemoryLimit parsed, 0 when unset; valid after Load or
// Validate.
func (c *Config) MemoryLimitBytes() int64 {
	n, err := parseMemoryLimit(c.MemoryLimit)
	if err != nil {
		return 0
	}
	return n
}

// memoryUnits are GOMEMLIMIT's suffixes.
var memoryUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseMemoryLimit reads a size as GOMEMLIMIT writes it: a decimal number of
// bytes with an optional B, KiB, MiB, GiB or TiB suffix. Empty is 0 (unset).
func parseMemoryLimit(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	num, shift := s, uint(0)
	for _, u := range memoryUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = rest, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || num[0] == '+' || n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("%q is not a size such as \"512MiB\" (a number of bytes, or of KiB, MiB, GiB or TiB)", s)
	}
	if n<<shift < MinMemoryLimit {
		return 0, fmt.Errorf("%q is below the minimum of 32MiB", s)
	}
	return n << shift, nil
}

type keyKind int

const (
	keyString keyKind = iota
	keyInt
	keyStringList
)

type keySpec struct {
	kind keyKind
	str  func(c *Config) *string
	num  func(c *Config) *int
}

func strKey(f func(c *Config) *string) keySpec { return keySpec{kind: keyString, str: f} }
func intKey(f func(c *Config) *int) keySpec    { return keySpec{kind: keyInt, num: f} }

var keys = map[string]keySpec{
	"unix_sock_group":           strKey(func(c *Config) *string { return &c.UnixSockGroup }),
	"unix_sock_ro_perms":        strKey(func(c *Config) *string { return &c.UnixSockROPerms }),
	"unix_sock_rw_perms":        strKey(func(c *Config) *string { return &c.UnixSockRWPerms }),
	"unix_sock_admin_perms":     strKey(func(c *Config) *string { return &c.UnixSockAdminPerms }),
	"unix_sock_dir":             strKey(func(c *Config) *string { return &c.UnixSockDir }),
	"auth_unix_ro":              strKey(func(c *Config) *string { return &c.AuthUnixRO }),
	"auth_unix_rw":              strKey(func(c *Config) *string { return &c.AuthUnixRW }),
	"max_clients":               intKey(func(c *Config) *int { return &c.MaxClients }),
	"max_queued_clients":        intKey(func(c *Config) *int { return &c.MaxQueuedClients }),
	"max_anonymous_clients":     intKey(func(c *Config) *int { return &c.MaxAnonymousClients }),
	"min_workers":               intKey(func(c *Config) *int { return &c.MinWorkers }),
	"max_workers":               intKey(func(c *Config) *int { return &c.MaxWorkers }),
	"prio_workers":              intKey(func(c *Config) *int { return &c.PrioWorkers }),
	"max_client_requests":       intKey(func(c *Config) *int { return &c.MaxClientRequests }),
	"admin_max_clients":         intKey(func(c *Config) *int { return &c.AdminMaxClients }),
	"admin_max_queued_clients":  intKey(func(c *Config) *int { return &c.AdminMaxQueuedClients }),
	"admin_min_workers":         intKey(func(c *Config) *int { return &c.AdminMinWorkers }),
	"admin_max_workers":         intKey(func(c *Config) *int { return &c.AdminMaxWorkers }),
	"admin_max_client_requests": intKey(func(c *Config) *int { return &c.AdminMaxClientRequests }),
	"log_level":                 intKey(func(c *Config) *int { return &c.LogLevel }),
	"log_filters":               strKey(func(c *Config) *string { return &c.LogFilters }),
	"log_outputs":               strKey(func(c *Config) *string { return &c.LogOutputs }),
	"keepalive_interval":        intKey(func(c *Config) *int { return &c.KeepaliveInterval }),
	"keepalive_count":           intKey(func(c *Config) *int { return &c.KeepaliveCount }),
	"admin_keepalive_interval":  intKey(func(c *Config) *int { return &c.AdminKeepaliveInterval }),
	"admin_keepalive_count":     intKey(func(c *Config) *int { return &c.AdminKeepaliveCount }),
	"metrics_listen":            strKey(func(c *Config) *string { return &c.MetricsListen }),
	"secret_driver_socket":      strKey(func(c *Config) *string { return &c.SecretDriverSocket }),
	"secret_driver_uri":         strKey(func(c *Config) *string { return &c.SecretDriverURI }),
	"secret_driver_token_file":  strKey(func(c *Config) *string { return &c.SecretDriverTokenFile }),
	"rbd_timeout":               intKey(func(c *Config) *int { return &c.RBDTimeout }),
	"rbd_listing_ttl":           intKey(func(c *Config) *int { return &c.RBDListingTTL }),
	"memory_limit":              strKey(func(c *Config) *string { return &c.MemoryLimit }),
}

// ignoredKeys are libvirt daemon settings that are valid in libvirt's
// virtstoraged.conf but have no effect here; they get a warning of their own
// so that a file copied from libvirt loads and says what it lost.
var ignoredKeys = map[string]string{
	"access_drivers":             "access control drivers are not supported",
	"audit_level":                "auditing is not supported",
	"audit_logging":              "auditing is not supported",
	"host_uuid":                  "host UUID is not used by the storage daemon",
	"host_uuid_source":           "host UUID is not used by the storage daemon",
	"sasl_allowed_username_list": "SASL is not supported",
	"log_buffer_size":            "the log ring buffer was removed from libvirt and is not implemented",
	"ovs_timeout":                "not used by the storage daemon",
}

// Load reads the config file at path and returns it with defaults filled in
// and validated. When explicit is false (the default path, no -f) a missing
// file means defaults; when true it is an error. Warnings list settings that
// were ignored (unknown keys, duplicates, keys without effect).
func Load(path string, explicit bool) (*Config, []string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return Defaults(), nil, nil
		}
		return nil, nil, fmt.Errorf("conffile: read %s: %w", path, err)
	}
	return LoadBytes(path, src)
}

// LoadBytes is Load for a file already in memory; path names it in messages.
func LoadBytes(path string, src []byte) (*Config, []string, error) {
	entries, err := Parse(path, src)
	if err != nil {
		return nil, nil, err
	}
	c := Defaults()
	var warnings []string
	seen := map[string]int{}
	for _, e := range entries {
		if first, dup := seen[e.Key]; dup {
			// libvirt looks keys up first-match, so later copies never count.
			warnings = append(warnings, fmt.Sprintf("%s:%d: duplicate key %q ignored, the one on line %d wins", path, e.Line, e.Key, first))
			continue
		}
		seen[e.Key] = e.Line
		spec, ok := keys[e.Key]
		if !ok {
			if why, known := ignoredKeys[e.Key]; known {
				warnings = append(warnings, fmt.Sprintf("%s:%d: key %q ignored: %s", path, e.Line, e.Key, why))
			} else {
				warnings = append(warnings, fmt.Sprintf("%s:%d: unknown key %q ignored", path, e.Line, e.Key))
			}
			continue
		}
		if err := assign(c, spec, e); err != nil {
			return nil, nil, &SyntaxError{File: path, Line: e.Line, Msg: err.Error()}
		}
	}
	if _, set := seen["unix_sock_rw_perms"]; !set && c.AuthUnixRW == AuthPolkit {
		// As libvirt: with polkit deciding who may manage storage, the socket
		// itself is open to all unless the file says otherwise.
		c.UnixSockRWPerms = "0777"
	}
	if c.MaxAnonymousClients > c.MaxClients {
		// Lowering max_clients alone is a reasonable edit; refusing to start
		// over the untouched default of the other key would not be.
		warnings = append(warnings, fmt.Sprintf("%s: max_anonymous_clients (%d) lowered to max_clients (%d)", path, c.MaxAnonymousClients, c.MaxClients))
		c.MaxAnonymousClients = c.MaxClients
	}
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("conffile: %s: %w", path, err)
	}
	return c, warnings, nil
}

func assign(c *Config, spec keySpec, e Entry) error {
	switch spec.kind {
	case keyString:
		if e.Value.Kind != KindString {
			return fmt.Errorf("key %q: expected a string, got %s", e.Key, e.Value.Kind)
		}
		*spec.str(c) = e.Value.Str
	case keyInt:
		if e.Value.Kind != KindInt {
			return fmt.Errorf("key %q: expected an integer, got %s", e.Key, e.Value.Kind)
		}
		// Every integer setting of the daemon is unsigned in libvirt.
		if e.Value.Int < 0 || e.Value.Int > 1<<31-1 {
			return fmt.Errorf("key %q: %d out of range (0 to %d)", e.Key, e.Value.Int, 1<<31-1)
		}
		*spec.num(c) = int(e.Value.Int)
	}
	return nil
}

// Validate checks values that parse but make no sense together.
func (c *Config) Validate() error {
	var errs []string
	for _, p := range []struct{ key, val string }{
		{"unix_sock_ro_perms", c.UnixSockROPerms},
		{"unix_sock_rw_perms", c.UnixSockRWPerms},
		{"unix_sock_admin_perms", c.UnixSockAdminPerms},
	} {
		if _, err := parsePerms(p.val); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", p.key, err))
		}
	}
	for _, a := range []struct{ key, val string }{
		{"auth_unix_ro", c.AuthUnixRO},
		{"auth_unix_rw", c.AuthUnixRW},
	} {
		switch a.val {
		case AuthNone, AuthPolkit:
		default:
			// libvirt's words for an auth it was built without (sasl here).
			errs = append(errs, fmt.Sprintf("%s: unsupported auth %s", a.key, a.val))
		}
	}
	if _, err := parseMemoryLimit(c.MemoryLimit); err != nil {
		errs = append(errs, fmt.Sprintf("memory_limit: %v", err))
	}
	if c.LogLevel < 1 || c.LogLevel > 4 {
		errs = append(errs, fmt.Sprintf("log_level: %d not in 1 (debug) to 4 (error)", c.LogLevel))
	}
	if c.MinWorkers > c.MaxWorkers {
		errs = append(errs, fmt.Sprintf("min_workers (%d) greater than max_workers (%d)", c.MinWorkers, c.MaxWorkers))
	}
	if c.MaxWorkers < 1 {
		errs = append(errs, "max_workers must be at least 1")
	}
	if c.AdminMinWorkers > c.AdminMaxWorkers {
		errs = append(errs, fmt.Sprintf("admin_min_workers (%d) greater than admin_max_workers (%d)", c.AdminMinWorkers, c.AdminMaxWorkers))
	}
	if c.AdminMaxWorkers < 1 {
		errs = append(errs, "admin_max_workers must be at least 1")
	}
	if c.MaxClientRequests < 1 {
		errs = append(errs, "max_client_requests must be at least 1")
	}
	if c.AdminMaxClientRequests < 1 {
		errs = append(errs, "admin_max_client_requests must be at least 1")
	}
	if _, _, err := parseMetricsListen(c.MetricsListen); err != nil {
		errs = append(errs, "metrics_listen: "+err.Error())
	}
	if u := c.SecretDriverURI; u != "" && !strings.HasPrefix(u, "secret:///") {
		errs = append(errs, fmt.Sprintf("secret_driver_uri: %q is not a secret driver URI (secret:///system or secret:///session)", u))
	}
	for _, p := range []struct{ key, val string }{
		{"secret_driver_socket", c.SecretDriverSocket},
		{"secret_driver_token_file", c.SecretDriverTokenFile},
	} {
		if p.val != "" && !strings.HasPrefix(p.val, "/") {
			errs = append(errs, fmt.Sprintf("%s: %q is not an absolute path", p.key, p.val))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// MetricsAddr returns where metrics are served as a network ("unix" or
// "tcp") and an address for net.Listen; network is "" when metrics are off.
// Valid after Load or Validate.
func (c *Config) MetricsAddr() (network, address string) {
	network, address, err := parseMetricsListen(c.MetricsListen)
	if err != nil {
		return "", "" // off, the safe choice if a caller skipped Validate
	}
	return network, address
}

// parseMetricsListen reads metrics_listen. TCP is refused anywhere but on a
// loopback address: the metrics name every pool and volume job, and anyone
// who can reach the port can read them (there is no authentication).
func parseMetricsListen(s string) (network, address string, err error) {
	if s == "" {
		return "", "", nil
	}
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return "", "", fmt.Errorf("%q: the socket path must be absolute", s)
		}
		return "unix", filepath.Clean(path), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", "", fmt.Errorf("%q: want \"unix:/PATH\" or a loopback \"IP:PORT\" such as \"127.0.0.1:9177\"", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", "", fmt.Errorf("%q: %q is not a port number (1 to 65535)", s, port)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", "", fmt.Errorf("%q: only a loopback address (127.0.0.1, [::1]) is allowed: the metrics have no authentication; use a UNIX socket or a proxy to export them further", s)
	}
	return "tcp", net.JoinHostPort(ip.String(), port), nil
}

// Keys lists every key Load understands, sorted; the sample config and the
// man page are checked against it.
func Keys() []string {
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
