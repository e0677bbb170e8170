package process

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Signals delivers the signals the daemon acts on.
type Signals struct {
	// Reload receives SIGHUP: reread the config, reopen log files.
	Reload <-chan os.Signal
	// Shutdown receives SIGTERM and SIGINT.
	Shutdown <-chan os.Signal

	reload, shutdown chan os.Signal
}

// NotifySignals starts catching SIGHUP, SIGTERM and SIGINT; Stop undoes it.
func NotifySignals() *Signals {
	// A buffer of one is enough: two SIGHUPs before the first is handled
	// mean one reload, and a shutdown only needs to be seen once.
	s := &Signals{reload: make(chan os.Signal, 1), shutdown: make(chan os.Signal, 2)}
	s.Reload, s.Shutdown = s.reload, s.shutdown
	signal.Notify(s.reload, syscall.SIGHUP)
	signal.Notify(s.shutdown, syscall.SIGTERM, syscall.SIGINT)
	return s
}

// Stop restores the default handling of the signals.
func (s *Signals) Stop() {
	signal.Stop(s.reload)
	signal.Stop(s.shutdown)
}

// NotifyReady tells systemd (Type=notify) that the daemon is up; without
// NOTIFY_SOCKET it does nothing.
func NotifyReady() error { return notify(daemon.SdNotifyReady) }

// NotifyStopping tells systemd that shutdown has begun.
func NotifyStopping() error { return notify(daemon.SdNotifyStopping) }

// NotifyReloading tells systemd that a reload has begun; send NotifyReady
// when it is done.
func NotifyReloading() error { return notify(daemon.SdNotifyReloading) }

// NotifyStatus sets the free-form status line systemctl status shows.
func NotifyStatus(status string) error { return notify("STATUS=" + status) }

func notify(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("process: sd_notify %s: %w", state, err)
	}
	return nil
}
