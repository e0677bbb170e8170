// Command virtstoraged is libvirt's storage daemon, rebuilt in Go: it serves
// libvirt's RPC protocol on UNIX sockets and manages storage pools and volumes.
// This package is the composition root: the CLI, the config file, and the wire
// injector that assembles the adapters around the domain service.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

// Globals are virtstoraged(8)'s options plus our --root extension.
type Globals struct {
	Daemon  bool             `short:"d" help:"Run as a daemon and write the PID file."`
	Config  string           `short:"f" name:"config" placeholder:"FILE" help:"Use this configuration file instead of the default."`
	PidFile string           `short:"p" name:"pid-file" placeholder:"FILE" help:"Use this name for the PID file instead of the default."`
	Timeout int              `short:"t" name:"timeout" placeholder:"SECONDS" help:"Exit after SECONDS with no client connection and no running job (0 = never)."`
	Verbose bool             `short:"v" help:"Enable debug output."`
	Version kong.VersionFlag `short:"V" help:"Print the version and exit."`
	Root    string           `name:"root" placeholder:"DIR" help:"Keep every file the daemon uses (config, pools, status, sockets, pid file) under DIR, as a system daemon would under /."`
	// SysfsRoot lets tests show mpath, scsi and iscsi pools a fake sysfs
	// tree (device-mapper maps, SCSI hosts and LUNs).
	SysfsRoot string `name:"sysfs-root" hidden:"" default:"/sys" help:"Where mpath, scsi, iscsi and disk pools read the kernel's devices (testing)."`
	// CPUProfile is for finding where the daemon's time goes (benchmarks).
	CPUProfile string `name:"cpuprofile" hidden:"" placeholder:"FILE" help:"Write a Go CPU profile to FILE until exit."`
}

func main() {
	var g Globals
	kctx := kong.Parse(&g,
		kong.Name("virtstoraged"),
		kong.Description("libvirt storage pool management daemon (virtstoraged-go)"),
		kong.Vars{"version": fmt.Sprintf("virtstoraged (virtstoraged-go) %s", version)},
		kong.UsageOnError(),
	)
	if g.CPUProfile != "" {
		stop, err := startCPUProfile(g.CPUProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "virtstoraged: %v\n", err)
			kctx.Exit(1)
		}
		defer stop()
	}
	if err := run(&g); err != nil {
		fmt.Fprintf(os.Stderr, "virtstoraged: %v\n", err)
		kctx.Exit(1)
	}
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
