// Package process holds the daemon's dealings with the operating system as a
// process: where its files live, its pid file, detaching into the
// background, signals and systemd readiness notification.
package process

import (
	"errors"
	"path/filepath"
)

// Name is the daemon's name as it appears in file names.
const Name = "virtstoraged"

// Paths are the files and directories of one daemon instance.
type Paths struct {
	// ConfigFile is virtstoraged.conf.
	ConfigFile string
	// StorageConfigDir holds persistent pool definitions (NAME.xml).
	StorageConfigDir string
	// AutostartDir holds the autostart symlinks.
	AutostartDir string
	// StatusDir holds the runtime status of active pools.
	StatusDir string
	// SockDir is the directory of the sockets (unix_sock_dir).
	SockDir string
	// SockRW, SockRO and SockAdmin are the socket paths; SockRO is empty in
	// session (non-root) mode, which has no read-only socket.
	SockRW    string
	SockRO    string
	SockAdmin string
	// PidFile is written when daemonized.
	PidFile string
	// LogDir is where the default log file goes when daemonized without journald.
	LogDir string
	// Privileged tells the system layout (root or --root) from the session one.
	Privileged bool
}

// PathsOptions are the inputs that decide the layout.
type PathsOptions struct {
	// Root is --root: when set, the system layout is used under it, whoever runs.
	Root string
	// Privileged is true when running as root.
	Privileged bool
	// Getenv reads the environment (os.Getenv); Home is the user's home
	// directory (os.UserHomeDir), used when the XDG variables are unset.
	Getenv func(string) string
	Home   string
}

// NewPaths computes the layout of DESIGN.md's "State on disk" table.
func NewPaths(o PathsOptions) (Paths, error) {
	if o.Root != "" || o.Privileged {
		root := o.Root
		if root != "" {
			abs, err := filepath.Abs(root)
			if err != nil {
				return Paths{}, err
			}
			root = abs
		}
		etc := filepath.Join(root, "/etc/libvirt")
		run := filepath.Join(root, "/run")
		p := Paths{
			ConfigFile:       filepath.Join(etc, Name+".conf"),
			StorageConfigDir: filepath.Join(etc, "storage"),
			AutostartDir:     filepath.Join(etc, "storage", "autostart"),
			StatusDir:        filepath.Join(run, "libvirt", "storage"),
			PidFile:          filepath.Join(run, Name+".pid"),
			LogDir:           filepath.Join(root, "/var/log/libvirt"),
			Privileged:       true,
		}
		return p.WithSockDir(filepath.Join(run, "libvirt")), nil
	}

	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	home := o.Home
	// The XDG base directory spec says relative values are to be ignored.
	xdg := func(env, fallback string) (string, error) {
		if v := getenv(env); filepath.IsAbs(v) {
			return v, nil
		}
		if home == "" {
			return "", errors.New("process: cannot find the home directory for $" + env + " fallback")
		}
		return filepath.Join(home, fallback), nil
	}
	configHome, err := xdg("XDG_CONFIG_HOME", ".config")
	if err != nil {
		return Paths{}, err
	}
	cacheHome, err := xdg("XDG_CACHE_HOME", ".cache")
	if err != nil {
		return Paths{}, err
	}
	runtimeDir := userRuntimeDir(getenv, cacheHome)
	etc := filepath.Join(configHome, "libvirt")
	run := filepath.Join(runtimeDir, "libvirt")
	p := Paths{
		ConfigFile:       filepath.Join(etc, Name+".conf"),
		StorageConfigDir: filepath.Join(etc, "storage"),
		AutostartDir:     filepath.Join(etc, "storage", "autostart"),
		StatusDir:        filepath.Join(run, "storage"),
		PidFile:          filepath.Join(run, Name+".pid"),
		LogDir:           filepath.Join(cacheHome, "libvirt"),
	}
	return p.WithSockDir(run), nil
}

// userRuntimeDir is GLib's g_get_user_runtime_dir, which libvirt uses:
// without XDG_RUNTIME_DIR the runtime files go to the cache directory.
func userRuntimeDir(getenv func(string) string, cacheHome string) string {
	if v := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(v) {
		return v
	}
	return cacheHome
}

// UserRuntimeDir is where a session (non-root) libvirt daemon keeps its
// sockets and runtime files, under libvirt/: $XDG_RUNTIME_DIR, else
// $XDG_CACHE_HOME or ~/.cache. Other daemons' sockets (the secret driver's)
// are found there whatever --root says.
func UserRuntimeDir(getenv func(string) string, home string) string {
	cache := getenv("XDG_CACHE_HOME")
	if !filepath.IsAbs(cache) {
		cache = filepath.Join(home, ".cache")
	}
	return userRuntimeDir(getenv, cache)
}

// WithSockDir moves the sockets to dir (unix_sock_dir); "" leaves them be.
func (p Paths) WithSockDir(dir string) Paths {
	if dir == "" {
		return p
	}
	p.SockDir = dir
	p.SockRW = filepath.Join(dir, Name+"-sock")
	p.SockAdmin = filepath.Join(dir, Name+"-admin-sock")
	p.SockRO = ""
	if p.Privileged {
		p.SockRO = filepath.Join(dir, Name+"-sock-ro")
	}
	return p
}

// LogFile is the default log file of a daemonized process without journald
// (logconf.Options.DefaultLogFile).
func (p Paths) LogFile() string { return filepath.Join(p.LogDir, Name+".log") }
