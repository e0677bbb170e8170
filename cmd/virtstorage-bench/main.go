// Command virtstorage-bench is a load generator for libvirt-compatible storage
// daemons: it runs storbench.py's scenarios through the generated client in gen/
// (nothing else talks to the daemon), against one daemon or two side by side, and
// prints medians [min-max] over rounds with the ratio B/A.
//
//	virtstorage-bench --uri 'storage:///system?socket=/run/libvirt/virtstoraged-sock' --pid 1234
//	virtstorage-bench --compare URI_A URI_B --pid-a 1 --pid-b 2 --rounds 3 --json out.json
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/cmd/virtstorage-bench/internal/bench"
)

// CLI is the command line.
type CLI struct {
	URI     string   `help:"libvirt URI of the daemon, e.g. storage:///system?socket=PATH." placeholder:"URI" xor:"target"`
	Socket  string   `help:"Socket of the daemon (instead of --uri)." placeholder:"PATH" xor:"target" type:"path"`
	Compare bool     `help:"Compare two daemons: give URI_A URI_B as arguments." xor:"target"`
	URIs    []string `arg:"" optional:"" name:"uri" help:"With --compare: URI_A URI_B."`
	PID     int      `name:"pid" help:"Daemon pid, for its CPU time and memory."`
	PIDA    int      `name:"pid-a" help:"With --compare: pid of daemon A."`
	PIDB    int      `name:"pid-b" help:"With --compare: pid of daemon B."`
	Only    []string `help:"Scenarios to run (comma list): ${scenarios}." placeholder:"NAME"`
	JSON    string   `name:"json" help:"Write every sample and the summary to FILE." placeholder:"FILE" type:"path"`
	Keep    bool     `help:"Keep the files under the work directory."`
	Quiet   bool     `short:"q" help:"No progress bar."`
	CPUProf string   `name:"cpuprofile" help:"Write the tool's own CPU profile to FILE (client overhead)." placeholder:"FILE" type:"path"`

	Rounds        int        `default:"3" help:"Rounds; the table shows median [min-max] over them."`
	Workdir       string     `default:"/tmp/bench-data/vsb" help:"Directory for the pools (the daemons must be able to use it)." type:"path"`
	NLookup       int        `name:"n-lookup" default:"20000" help:"rpc_lookup iterations (2 calls each)."`
	Threads       int        `default:"8" help:"rpc_concurrent connections."`
	Duration      float64    `default:"5" help:"rpc_concurrent seconds."`
	Files         int        `default:"10000" help:"refresh_10k volumes."`
	NCreate       int        `name:"n-create" default:"500" help:"vol_create_delete raw create+delete pairs."`
	NQcow2        int        `name:"n-qcow2" default:"200" help:"vol_create_qcow2 volumes."`
	StreamSize    bench.Size `default:"1G" help:"stream and clone volume size."`
	SparseSize    bench.Size `default:"4G" help:"download_sparse volume size."`
	SparseData    bench.Size `default:"256M" help:"download_sparse data bytes."`
	SparseExtents int        `default:"4" help:"download_sparse data extents."`
	WipeSize      bench.Size `default:"256M" help:"wipe volume size."`
	Chunk         bench.Size `default:"4M" help:"Upload send and read size (libvirt's virsh uses 262120)."`
}

func main() {
	var cli CLI
	kctx := kong.Parse(&cli,
		kong.Name("virtstorage-bench"),
		kong.Description("Benchmark libvirt storage daemons through the generated RPC client."),
		kong.Vars{"scenarios": strings.Join(bench.ScenarioNames(), ", ")},
		kong.UsageOnError(),
	)
	if err := cli.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "virtstorage-bench: %v\n", err)
		kctx.Exit(1)
	}
}

// targets builds the daemons to measure from the flags.
func (c *CLI) targets() ([]bench.Target, error) {
	switch {
	case c.Compare:
		if len(c.URIs) != 2 {
			return nil, errors.New("--compare takes two URIs: URI_A URI_B")
		}
		a, err := bench.NewTarget("A", c.URIs[0], c.PIDA)
		if err != nil {
			return nil, err
		}
		b, err := bench.NewTarget("B", c.URIs[1], c.PIDB)
		if err != nil {
			return nil, err
		}
		return []bench.Target{a, b}, nil
	case len(c.URIs) > 0:
		return nil, errors.New("URI arguments need --compare; use --uri for one daemon")
	case c.Socket != "":
		t, err := bench.NewTarget("A", bench.SocketURI(c.Socket), c.PID)
		return []bench.Target{t}, err
	default:
		uri := c.URI
		if uri == "" {
			uri = "storage:///system"
		}
		t, err := bench.NewTarget("A", uri, c.PID)
		return []bench.Target{t}, err
	}
}

// Run runs the benchmark and prints the table (and the JSON file).
func (c *CLI) Run() error {
	targets, err := c.targets()
	if err != nil {
		return err
	}
	var only []string
	for _, o := range c.Only {
		only = append(only, strings.Split(o, ",")...)
	}
	scen, err := bench.ResolveScenarios(only)
	if err != nil {
		return err
	}
	log := logrus.New()
	log.Out = os.Stderr
	var prog *bench.Progress
	if !c.Quiet && isTerminal(os.Stderr) {
		prog = bench.NewProgress(os.Stderr)
		log.Out = prog
	}
	r := &bench.Runner{
		Config: bench.Config{
			Rounds: c.Rounds, Workdir: c.Workdir, Keep: c.Keep,
			NLookup: c.NLookup, Threads: c.Threads, Duration: time.Duration(c.Duration * float64(time.Second)),
			Files: c.Files, NCreate: c.NCreate, NQcow2: c.NQcow2,
			StreamSize: c.StreamSize, SparseSize: c.SparseSize, SparseData: c.SparseData,
			SparseExtents: c.SparseExtents, WipeSize: c.WipeSize, Chunk: c.Chunk,
		},
		Targets: targets, Scenarios: scen, Log: logrus.NewEntry(log), Progress: prog,
	}
	if c.CPUProf != "" {
		f, err := os.Create(c.CPUProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, runErr := r.Run(ctx)
	if rep == nil {
		return runErr
	}
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if c.JSON != "" {
		if err := writeJSON(c.JSON, rep); err != nil {
			return err
		}
	}
	return runErr
}

func writeJSON(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
