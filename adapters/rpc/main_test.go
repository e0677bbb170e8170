package rpc_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/metrics"
	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// noStatus is an empty ports.StatusSource.
type noStatus struct{}

func (noStatus) Pools() []ports.PoolStatus { return nil }
func (noStatus) Jobs() ports.JobSnapshot   { return ports.JobSnapshot{} }

// serveEnv names the socket directory when the test binary is re-run as a
// bare server (BenchmarkLookupByNameServerCPU): the server's CPU can then be
// read apart from the clients'.
const serveEnv = "RPC_TEST_SERVE_DIR"

// serveMetricsEnv, set with serveEnv, gives the bare server the daemon's
// metrics as its call observer, to measure what they cost a call.
const serveMetricsEnv = "RPC_TEST_SERVE_METRICS"

func TestMain(m *testing.M) {
	if dir := os.Getenv(serveEnv); dir != "" {
		os.Exit(serveForBenchmark(dir))
	}
	os.Exit(m.Run())
}

// serveForBenchmark serves the in-memory port on dir/sock, says "ready" on
// stdout, and exits when stdin closes.
func serveForBenchmark(dir string) int {
	logger := logrus.New()
	logger.SetLevel(logrus.WarnLevel)
	log := logrus.NewEntry(logger)
	api := newMemAPI()
	hub := rpc.NewEventHub(log)
	api.events = hub
	cfg := rpc.Config{Limits: rpc.DefaultLimits(), Privileged: true}
	if os.Getenv(serveMetricsEnv) != "" {
		m, err := metrics.New(noStatus{}, metrics.Config{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cfg.Observer = m
	}
	srv, err := rpc.NewServer(cfg, api, hub, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go srv.Serve(ln, rpc.ListenRW) //nolint:errcheck // ends with the process
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}
