package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/conffile"
	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/logconf"
	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/process"
	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/sockets"
	"github.com/virtstoraged-go/virtstoraged/adapters/metrics"
	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
)

// shutdownGrace is how long in-flight calls may run after SIGTERM before their
// connections are cut.
const shutdownGrace = 15 * time.Second

// settings are the resolved inputs of one daemon instance: what the CLI, the
// environment and the config file decided. The injector builds the app from them.
type settings struct {
	paths      process.Paths
	configFile string
	explicit   bool // -f given: a missing file is an error
	sysfsRoot  string
	verbose    bool // -v: debug logging whatever log_level says
	conf       *conffile.Config
	logger     *logrus.Logger
	logs       *logconf.Manager
	timeouts   *idleTimer
	memLimit   *process.MemoryLimit
}

func resolveSettings(g *Globals) (*settings, error) {
	home, _ := os.UserHomeDir()
	paths, err := process.NewPaths(process.PathsOptions{
		Root:       g.Root,
		Privileged: os.Geteuid() == 0,
		Getenv:     os.Getenv,
		Home:       home,
	})
	if err != nil {
		return nil, err
	}
	s := &settings{paths: paths, configFile: paths.ConfigFile, sysfsRoot: g.SysfsRoot, verbose: g.Verbose}
	if g.Config != "" {
		s.configFile, s.explicit = g.Config, true
	}
	conf, warnings, err := conffile.Load(s.configFile, s.explicit)
	if err != nil {
		return nil, err
	}
	s.conf = conf
	if conf.UnixSockDir != "" {
		s.paths = s.paths.WithSockDir(conf.UnixSockDir)
	}
	if g.PidFile != "" {
		s.paths.PidFile = g.PidFile
	}
	s.logger = logrus.New()
	s.logs, err = logconf.New(s.logger, logconf.Options{
		Level:          conf.LogLevel,
		Filters:        conf.LogFilters,
		Outputs:        conf.LogOutputs,
		Verbose:        g.Verbose,
		Daemon:         g.Daemon,
		DefaultLogFile: paths.LogFile(),
	})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		s.logger.WithField(logconf.ModuleField, "conf").Warn(w)
	}
	s.timeouts = newIdleTimer(time.Duration(g.Timeout) * time.Second)
	s.memLimit = process.NewMemoryLimit()
	applyMemoryLimit(s, conf, s.logger.WithField(logconf.ModuleField, "daemon"))
	return s, nil
}

// applyMemoryLimit sets the runtime's memory limit from conf's memory_limit,
// s.conf being the configuration in force until now.
func applyMemoryLimit(s *settings, conf *conffile.Config, log *logrus.Entry) {
	limit := s.memLimit.Set(conf.MemoryLimitBytes())
	if conf.MemoryLimit != "" || s.conf.MemoryLimit != "" {
		log.WithField("bytes", limit).Info("memory limit set")
	}
}

func run(g *Globals) error {
	// First of all, before -d starts the daemon proper or anything runs a
	// command: descriptors inherited from whoever started us stay with us.
	sealErr := process.SealInheritedFDs()
	var child *process.Child
	if g.Daemon {
		c, err := process.Daemonize(process.DaemonConfig{})
		if c == nil {
			return err // the parent: nil once the daemon is ready
		}
		child = c
	}
	err := serve(g, child, sealErr)
	if err != nil && child != nil {
		_ = child.Fail(err)
	}
	return err
}

func serve(g *Globals, child *process.Child, sealErr error) error {
	s, err := resolveSettings(g)
	if err != nil {
		return err
	}
	defer s.logs.Close()
	log := s.logger.WithField(logconf.ModuleField, "daemon")
	if sealErr != nil {
		log.WithError(sealErr).Warn("inherited descriptors may leak into the commands the daemon runs")
	}

	// Signals are caught from the start, so that a SIGTERM arriving while the
	// sockets are being set up still shuts down cleanly (sockets and pid file removed).
	sig := process.NotifySignals()
	defer sig.Stop()

	releasePid, err := process.AcquirePidFile(s.paths.PidFile)
	if err != nil {
		return err
	}
	defer releasePid()

	a, cleanup, err := newApp(s)
	if err != nil {
		return err
	}
	defer cleanup()

	listeners, err := openListeners(s)
	if err != nil {
		return err
	}
	metricsLn, err := openMetricsListener(s)
	if err != nil {
		closeAll(listeners)
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.service.Start(ctx); err != nil {
		closeAll(listeners)
		if metricsLn != nil {
			_ = metricsLn.Close()
		}
		return fmt.Errorf("start storage driver: %w", err)
	}

	var serving sync.WaitGroup
	for kind, ln := range listeners {
		serving.Add(1)
		go func(ln net.Listener, kind rpc.ListenerKind) {
			defer serving.Done()
			if err := a.server.Serve(ln, kind); err != nil && !errors.Is(err, rpc.ErrServerClosed) {
				log.WithError(err).Error("listener failed")
			}
		}(ln, kind)
	}
	var metricsSrv *metrics.Server
	if metricsLn != nil {
		mlog := s.logger.WithField(logconf.ModuleField, "metrics")
		metricsSrv = a.metrics.NewServer(mlog)
		serving.Add(1)
		go func() {
			defer serving.Done()
			if err := metricsSrv.Serve(metricsLn); err != nil {
				mlog.WithError(err).Error("metrics listener failed")
			}
		}()
		mlog.WithField("listen", s.conf.MetricsListen).Info("serving metrics")
	}
	log.WithFields(logrus.Fields{"rw": s.paths.SockRW, "ro": s.paths.SockRO, "admin": s.paths.SockAdmin}).Info("virtstoraged ready")
	if child != nil {
		if err := child.Ready(); err != nil {
			log.WithError(err).Warn("could not release the parent process")
		}
	}
	_ = process.NotifyReady()

	idle := s.timeouts.start(a)
	defer s.timeouts.stop()
	// A reload runs beside the loop, so that SIGTERM is heard while it starts
	// autostart pools; like libvirt, a SIGHUP during a reload is dropped.
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	reloadDone := make(chan struct{}, 1)
	reloading := false
	var reloads sync.WaitGroup
loop:
	for {
		select {
		case <-sig.Reload:
			if reloading {
				log.Warn("a reload is in progress, SIGHUP ignored")
				continue
			}
			reloading = true
			reloads.Add(1)
			go func() {
				defer reloads.Done()
				reload(rctx, s, a, log)
				reloadDone <- struct{}{}
			}()
		case <-reloadDone:
			reloading = false
		case <-sig.Shutdown:
			log.Info("shutting down on signal")
			break loop
		case <-idle:
			log.Info("shutting down: idle timeout")
			break loop
		}
	}
	_ = process.NotifyStopping()
	rcancel()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	if err := a.server.Shutdown(sctx); err != nil {
		log.WithError(err).Warn("shutdown: connections cut after the grace period")
	}
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(sctx)
	}
	closeAll(listeners)
	serving.Wait()
	reloads.Wait()
	a.service.Shutdown(sctx)
	return nil
}

// reload applies SIGHUP: the config is read again; log settings and limits take
// effect at once; a bad file is reported and the running config kept. Then the
// storage driver reads the pool configs and autostart links again.
func reload(ctx context.Context, s *settings, a *app, log *logrus.Entry) {
	_ = process.NotifyReloading()
	defer func() {
		if ctx.Err() == nil {
			_ = process.NotifyReady()
		}
	}()
	reloadConfig(s, a, log)
	if err := a.service.Reload(ctx); err != nil {
		log.WithError(err).Error("reload: pool configs")
		return
	}
	log.Info("pool configs reloaded")
}

func reloadConfig(s *settings, a *app, log *logrus.Entry) {
	conf, warnings, err := conffile.Load(s.configFile, s.explicit)
	if err != nil {
		log.WithError(err).Error("reload: keeping the running configuration")
		return
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	if !s.verbose {
		if err := s.logs.SetLevel(conf.LogLevel); err != nil {
			log.WithError(err).Error("reload: log_level")
		}
	}
	if err := s.logs.SetFilters(conf.LogFilters); err != nil {
		log.WithError(err).Error("reload: log_filters")
	}
	if err := s.logs.SetOutputs(conf.LogOutputs); err != nil {
		log.WithError(err).Error("reload: log_outputs")
	}
	if err := s.logs.Reopen(); err != nil {
		log.WithError(err).Warn("reload: reopen log files")
	}
	if err := a.server.SetLimits(limitsFromConfig(conf)); err != nil {
		log.WithError(err).Error("reload: limits")
	}
	if conf.MetricsListen != s.conf.MetricsListen {
		log.WithField("metrics_listen", conf.MetricsListen).Warn("reload: metrics_listen takes effect at the next start")
		conf.MetricsListen = s.conf.MetricsListen
	}
	applyMemoryLimit(s, conf, log)
	s.conf = conf
	log.Info("configuration reloaded")
}

// openListeners takes the sockets from systemd when socket-activated, otherwise
// creates them with the configured permissions.
func openListeners(s *settings) (map[rpc.ListenerKind]net.Listener, error) {
	out := map[rpc.ListenerKind]net.Listener{}
	rw, ro, admin, activated, err := sockets.FromSystemd()
	if err != nil {
		return nil, err
	}
	if activated {
		for kind, ln := range map[rpc.ListenerKind]net.Listener{rpc.ListenRW: rw, rpc.ListenRO: ro, rpc.ListenAdmin: admin} {
			if ln != nil {
				out[kind] = ln
			}
		}
		return out, nil
	}
	type spec struct {
		kind  rpc.ListenerKind
		path  string
		perms os.FileMode
	}
	specs := []spec{
		{rpc.ListenRW, s.paths.SockRW, s.conf.UnixSockRWMode()},
		{rpc.ListenRO, s.paths.SockRO, s.conf.UnixSockROMode()},
		{rpc.ListenAdmin, s.paths.SockAdmin, s.conf.UnixSockAdminMode()},
	}
	for _, sp := range specs {
		if sp.path == "" {
			continue // session mode has no read-only socket
		}
		ln, err := sockets.Listen(sp.path, sp.perms, s.conf.UnixSockGroup)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out[sp.kind] = ln
	}
	return out, nil
}

// openMetricsListener opens metrics_listen, nil when metrics are off. The
// socket takes the read-only socket's permissions and group: it shows less
// than that one lets its users read.
func openMetricsListener(s *settings) (net.Listener, error) {
	network, address := s.conf.MetricsAddr()
	switch network {
	case "":
		return nil, nil
	case "unix":
		return sockets.Listen(address, s.conf.UnixSockROMode(), s.conf.UnixSockGroup)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	return ln, nil
}

func closeAll(listeners map[rpc.ListenerKind]net.Listener) {
	for _, ln := range listeners {
		_ = ln.Close()
	}
}

func limitsFromConfig(c *conffile.Config) rpc.Limits {
	return rpc.Limits{
		Main: rpc.ServerLimits{
			MaxClients:          c.MaxClients,
			MaxAnonymousClients: c.MaxAnonymousClients,
			MinWorkers:          c.MinWorkers,
			MaxWorkers:          c.MaxWorkers,
			PrioWorkers:         c.PrioWorkers,
			MaxClientRequests:   c.MaxClientRequests,
			KeepaliveInterval:   time.Duration(c.KeepaliveInterval) * time.Second,
			KeepaliveCount:      c.KeepaliveCount,
		},
		Admin: rpc.ServerLimits{
			MaxClients:        c.AdminMaxClients,
			MinWorkers:        c.AdminMinWorkers,
			MaxWorkers:        c.AdminMaxWorkers,
			MaxClientRequests: c.AdminMaxClientRequests,
			KeepaliveInterval: time.Duration(c.AdminKeepaliveInterval) * time.Second,
			KeepaliveCount:    c.AdminKeepaliveCount,
		},
	}
}
