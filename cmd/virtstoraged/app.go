package main

import (
	"runtime/debug"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/adapters/logconf"
	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/adapters/mpath"
	"github.com/virtstoraged-go/virtstoraged/adapters/netfs"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/adapters/statefile"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// app is the assembled daemon: the storage service and the RPC server in front of it.
type app struct {
	service *service.Service
	server  *rpc.Server
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

func provideBackends(s *settings, runner ports.CommandRunner, l *logrus.Logger) []ports.PoolBackend {
	return []ports.PoolBackend{
		dir.New(runner, l.WithField(logconf.ModuleField, "storage.dir")),
		fs.New(runner, mountinfoPath, l.WithField(logconf.ModuleField, "storage.fs")),
		netfs.New(runner, mountinfoPath, l.WithField(logconf.ModuleField, "storage.netfs")),
		logical.New(runner, l.WithField(logconf.ModuleField, "storage.logical")),
		mpath.New(runner, s.sysfsRoot, l.WithField(logconf.ModuleField, "storage.mpath")),
	}
}

func provideStore(s *settings) (*statefile.Store, error) {
	return statefile.New(s.paths.StorageConfigDir, s.paths.AutostartDir, s.paths.StatusDir,
		s.logger.WithField(logconf.ModuleField, "storage.state"))
}

func provideEventHub(l *logrus.Logger) *rpc.EventHub {
	return rpc.NewEventHub(l.WithField(logconf.ModuleField, "rpc.events"))
}

func provideService(backends []ports.PoolBackend, codec ports.XMLCodec, store ports.StateStore, events ports.EventSink, log storageLog) (*service.Service, error) {
	return service.New(service.Config{}, backends, codec, store, events, log)
}

func provideRPCConfig(s *settings) rpc.Config {
	return rpc.Config{
		Limits:     limitsFromConfig(s.conf),
		Privileged: s.paths.Privileged,
		LogControl: s.logs,
		SetDaemonTimeout: func(seconds uint32) error {
			s.timeouts.set(time.Duration(seconds) * time.Second)
			return nil
		},
		ReleaseMemory: debug.FreeOSMemory,
	}
}

func provideServer(cfg rpc.Config, api ports.StorageAPI, hub *rpc.EventHub, l *logrus.Logger) (*rpc.Server, error) {
	return rpc.NewServer(cfg, api, hub, l.WithField(logconf.ModuleField, "rpc"))
}
