package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/conffile"
	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/logconf"
	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/process"
	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/disk"
	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/adapters/iscsi"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/relaxng"
	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/adapters/luks"
	"github.com/virtstoraged-go/virtstoraged/adapters/metrics"
	"github.com/virtstoraged-go/virtstoraged/adapters/mpath"
	"github.com/virtstoraged-go/virtstoraged/adapters/netfs"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/adapters/polkit"
	"github.com/virtstoraged-go/virtstoraged/adapters/rbd"
	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/adapters/scsi"
	"github.com/virtstoraged-go/virtstoraged/adapters/secretclient"
	"github.com/virtstoraged-go/virtstoraged/adapters/statefile"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// app is the assembled daemon: the storage service, the RPC server in front
// of it and, when metrics_listen asks for them, the metrics.
type app struct {
	service *service.Service
	server  *rpc.Server
	metrics *metrics.Metrics // nil when metrics are off
}

func (a *app) busy() bool {
	return a.server.NumClients() > 0 || a.service.ActiveJobs() > 0
}

// Providers for the wire injector (wire.go). Each takes what it needs and nothing
// else; the settings are the only input.

func provideLogger(s *settings) *logrus.Logger { return s.logger }

// storageLog is the service's logger. Each part of the daemon logs with its own
// "module" field (storage, rpc, exec, storage.dir, ...), which the log_filters of
// virtstoraged.conf select on; the named type keeps wire from mixing them up.
type storageLog *logrus.Entry

func provideStorageLog(l *logrus.Logger) storageLog {
	return l.WithField(logconf.ModuleField, "storage")
}

func provideRunner(l *logrus.Logger) *osexec.Runner {
	return osexec.New(l.WithField(logconf.ModuleField, "exec"))
}

// mountinfoPath is where fs and netfs pools learn what is mounted.
const mountinfoPath = "/proc/self/mountinfo"

// provideSecretStore connects, on first use, to libvirt's secret driver for
// the passphrases of encrypted volumes: the socket, URI and token of the
// config, else libvirt's defaults for who runs the daemon (the secret driver
// is another daemon's, so --root does not move them).
func provideSecretStore(s *settings, l *logrus.Logger) (*secretclient.Client, func()) {
	home, _ := os.UserHomeDir()
	cfg := secretclient.DefaultConfig(os.Geteuid() == 0, process.UserRuntimeDir(os.Getenv, home))
	if s.conf.SecretDriverSocket != "" {
		cfg.Socket = s.conf.SecretDriverSocket
	}
	if s.conf.SecretDriverURI != "" {
		cfg.URI = s.conf.SecretDriverURI
	}
	if s.conf.SecretDriverTokenFile != "" {
		cfg.TokenFile = s.conf.SecretDriverTokenFile
	}
	c := secretclient.New(cfg, l.WithField(logconf.ModuleField, "secret"))
	return c, func() { _ = c.Close() }
}

// provideKeys stages passphrases for qemu-img in private directories of the
// runtime status directory, on tmpfs as libvirt's. Directories a killed
// daemon left there are removed first.
func provideKeys(s *settings, secrets ports.SecretStore, l *logrus.Logger) *luks.Keys {
	luks.Sweep(s.paths.StatusDir, l.WithField(logconf.ModuleField, "storage"))
	return &luks.Keys{Store: secrets, Dir: s.paths.StatusDir}
}

func provideBackends(s *settings, runner ports.CommandRunner, keys *luks.Keys, l *logrus.Logger) []ports.PoolBackend {
	d := dir.New(runner, l.WithField(logconf.ModuleField, "storage.dir"))
	f := fs.New(runner, mountinfoPath, l.WithField(logconf.ModuleField, "storage.fs"))
	n := netfs.New(runner, mountinfoPath, l.WithField(logconf.ModuleField, "storage.netfs"))
	lv := logical.New(runner, l.WithField(logconf.ModuleField, "storage.logical"))
	d.Keys, f.Keys, n.Keys, lv.Keys = keys, keys, keys, keys
	return []ports.PoolBackend{d, f, n, lv,
		mpath.New(runner, s.sysfsRoot, l.WithField(logconf.ModuleField, "storage.mpath")),
		disk.New(runner, disk.Config{SysfsRoot: s.sysfsRoot}, l.WithField(logconf.ModuleField, "storage.disk")),
		// CHAP passwords come from libvirt's secret driver, as LUKS keys do.
		iscsi.New(runner, iscsi.Config{SysfsRoot: s.sysfsRoot, Secrets: iscsi.StoreSecrets{Store: keys.Store}}, l.WithField(logconf.ModuleField, "storage.iscsi")),
		scsi.New(scsi.NewLUNScanner(runner, s.sysfsRoot, "", "", l.WithField(logconf.ModuleField, "storage.scsi"))),
		rbd.New(runner, rbdConfig(s, keys.Store), l.WithField(logconf.ModuleField, "storage.rbd")),
	}
}

// provideValidator gives the codec libvirt's schemas for the VALIDATE flags.
// They are written next to the runtime status (run/libvirt/virtstoraged-schemas)
// at the first validation, and removed at shutdown.
func provideValidator(s *settings, runner ports.CommandRunner) (*relaxng.Validator, func()) {
	v := relaxng.New(runner, relaxng.Dir(filepath.Join(filepath.Dir(s.paths.StatusDir), process.Name+"-schemas")))
	return v, func() { _ = v.Close() }
}

// rbdConfig takes rbd_timeout and rbd_listing_ttl from virtstoraged.conf;
// cephx keys come from libvirt's secret driver, and each command's key file
// lives in the runtime status directory (tmpfs, as the LUKS keys'), where
// the ones a killed daemon left are removed at start.
func rbdConfig(s *settings, secrets ports.SecretStore) rbd.Config {
	c := rbd.Config{Secrets: rbd.StoreSecrets{Store: secrets}, KeyDir: s.paths.StatusDir}
	rbd.SweepKeyDirs(c.KeyDir, s.logger.WithField(logconf.ModuleField, "storage.rbd"))
	if s.conf == nil {
		return c
	}
	if s.conf.RBDTimeout > 0 {
		c.Timeout = time.Duration(s.conf.RBDTimeout) * time.Second
	}
	c.ListingTTL = time.Duration(s.conf.RBDListingTTL) * time.Second
	if s.conf.RBDListingTTL <= 0 {
		c.ListingTTL = -1
	}
	return c
}

func provideStore(s *settings) (*statefile.Store, error) {
	st, err := statefile.New(s.paths.StorageConfigDir, s.paths.AutostartDir, s.paths.StatusDir,
		s.logger.WithField(logconf.ModuleField, "storage.state"))
	if err != nil {
		return nil, err
	}
	if err := st.CreateStatusDir(); err != nil {
		return nil, err
	}
	return st, nil
}

func provideEventHub(l *logrus.Logger) *rpc.EventHub {
	return rpc.NewEventHub(l.WithField(logconf.ModuleField, "rpc.events"))
}

func provideService(backends []ports.PoolBackend, codec ports.XMLCodec, store ports.StateStore, events ports.EventSink, log storageLog) (*service.Service, error) {
	return service.New(service.Config{}, backends, codec, store, events, log)
}

// providePolkit gives the RPC server polkit's answers when a socket's clients
// are to be checked by it (auth_unix_rw or auth_unix_ro = "polkit"), and
// nothing otherwise: the daemon then never touches D-Bus.
func providePolkit(s *settings, l *logrus.Logger) (rpc.Authorizer, func()) {
	if s.conf.AuthUnixRW != conffile.AuthPolkit && s.conf.AuthUnixRO != conffile.AuthPolkit {
		return nil, func() {}
	}
	a := polkit.New(l.WithField(logconf.ModuleField, "rpc.polkit"))
	return a, func() { _ = a.Close() }
}

func authMode(v string) rpc.AuthMode {
	if v == conffile.AuthPolkit {
		return rpc.AuthPolkit
	}
	return rpc.AuthNone
}

// provideMetrics builds the metrics when metrics_listen is set, nil otherwise.
func provideMetrics(s *settings, status ports.StatusSource) (*metrics.Metrics, error) {
	if network, _ := s.conf.MetricsAddr(); network == "" {
		return nil, nil
	}
	return metrics.New(status, metrics.Config{Version: version})
}

func provideRPCConfig(s *settings, pk rpc.Authorizer, m *metrics.Metrics, status ports.StatusSource) rpc.Config {
	cfg := rpc.Config{
		Limits:     limitsFromConfig(s.conf),
		AuthRW:     authMode(s.conf.AuthUnixRW),
		AuthRO:     authMode(s.conf.AuthUnixRO),
		Polkit:     pk,
		Privileged: s.paths.Privileged,
		LogControl: s.logs,
		SetDaemonTimeout: func(seconds uint32) error {
			s.timeouts.set(time.Duration(seconds) * time.Second)
			return nil
		},
		Status:        status,
		ReleaseMemory: debug.FreeOSMemory,
	}
	if m != nil {
		// Only a real observer: a nil *Metrics in the interface would look set.
		cfg.Observer = m
	}
	return cfg
}

func provideServer(cfg rpc.Config, api ports.StorageAPI, hub *rpc.EventHub, l *logrus.Logger) (*rpc.Server, error) {
	return rpc.NewServer(cfg, api, hub, l.WithField(logconf.ModuleField, "rpc"))
}
