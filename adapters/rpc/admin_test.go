package rpc_test

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
)

// fakeLog is an in-memory rpc.LogControl.
type fakeLog struct {
	mu      sync.Mutex
	outputs string
	filters string
}

func (f *fakeLog) Outputs() string { f.mu.Lock(); defer f.mu.Unlock(); return f.outputs }
func (f *fakeLog) Filters() string { f.mu.Lock(); defer f.mu.Unlock(); return f.filters }
func (f *fakeLog) SetOutputs(s string) error {
	if strings.Contains(s, "bogus") {
		return errors.New("logconf: bad output")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s == "" {
		s = "3:stderr"
	}
	f.outputs = s
	return nil
}
func (f *fakeLog) SetFilters(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = s
	return nil
}

func params(ps []admin.TypedParam) map[string]admin.TypedParamValue {
	m := map[string]admin.TypedParamValue{}
	for _, p := range ps {
		m[p.Field] = p.Value
	}
	return m
}

func uintP(field string, v uint32) admin.TypedParam {
	return admin.TypedParam{Field: field, Value: admin.TypedParamValue{Type: 2, Ui: v}}
}

func TestAdminProgram(t *testing.T) {
	t.Parallel()
	lc := &fakeLog{outputs: "3:file:/var/log/virtstoraged.log", filters: ""}
	var timeout uint32
	d := startDaemon(t, func(c *rpc.Config) {
		c.LogControl = lc
		c.SetDaemonTimeout = func(s uint32) error { timeout = s; return nil }
	})
	a := adminClient(t, d)
	ctx := ctx5(t)
	main := admin.Server{Name: "virtstoraged"}

	if v, err := a.ConnectGetLibVersion(ctx); err != nil || v.LibVer != 9000000 {
		t.Errorf("lib version %+v %v", v, err)
	}
	srvs, err := a.ConnectListServers(ctx, &admin.ConnectListServersArgs{NeedResults: 1})
	if err != nil || srvs.Ret != 2 || len(srvs.Servers) != 2 || srvs.Servers[0].Name != "virtstoraged" || srvs.Servers[1].Name != "admin" {
		t.Errorf("servers %+v %v", srvs, err)
	}
	if s, err := a.ConnectLookupServer(ctx, &admin.ConnectLookupServerArgs{Name: "admin"}); err != nil || s.Srv.Name != "admin" {
		t.Errorf("lookup admin %+v %v", s, err)
	}
	var e *virnet.Error
	_, err = a.ConnectLookupServer(ctx, &admin.ConnectLookupServerArgs{Name: "x"})
	if !errors.As(err, &e) || e.Code != 95 || e.Domain != 7 || optStr(e.Message) != "Server not found: No server named 'x'" {
		t.Errorf("unknown server: %v", err)
	}

	// Thread pool: defaults, then a change that takes effect.
	tp, err := a.ServerGetThreadpoolParameters(ctx, &admin.ServerGetThreadpoolParametersArgs{Srv: main})
	if err != nil {
		t.Fatal(err)
	}
	got := params(tp.Params)
	if got["minWorkers"].Ui != 5 || got["maxWorkers"].Ui != 20 || got["prioWorkers"].Ui != 5 || got["nWorkers"].Ui != 5 ||
		got["freeWorkers"].Ui != 5 || got["jobQueueDepth"].Type != 2 || len(tp.Params) != 6 {
		t.Errorf("threadpool %+v", tp.Params)
	}
	if err := a.ServerSetThreadpoolParameters(ctx, &admin.ServerSetThreadpoolParametersArgs{Srv: main,
		Params: []admin.TypedParam{uintP("maxWorkers", 7), uintP("prioWorkers", 2)}}); err != nil {
		t.Fatal(err)
	}
	tp, _ = a.ServerGetThreadpoolParameters(ctx, &admin.ServerGetThreadpoolParametersArgs{Srv: main})
	if got := params(tp.Params); got["maxWorkers"].Ui != 7 || got["prioWorkers"].Ui != 2 {
		t.Errorf("threadpool after set %+v", tp.Params)
	}
	setErrs := []struct {
		name    string
		give    []admin.TypedParam
		wantMsg string
	}{
		{"min above max", []admin.TypedParam{uintP("minWorkers", 50)}, "invalid argument: minWorkers cannot be larger than maxWorkers"},
		{"no workers", []admin.TypedParam{uintP("minWorkers", 0), uintP("maxWorkers", 0)},
			"invalid argument: maxWorkers must not be switched from zero to non-zero and vice versa"},
		{"unknown field", []admin.TypedParam{uintP("bogus", 1)}, "argument unsupported: parameter 'bogus' not supported"},
		{"wrong type", []admin.TypedParam{{Field: "maxWorkers", Value: admin.TypedParamValue{Type: 1, I: 3}}},
			"invalid argument: invalid type 'int' for parameter 'maxWorkers', expected 'uint'"},
	}
	for _, tt := range setErrs {
		err := a.ServerSetThreadpoolParameters(ctx, &admin.ServerSetThreadpoolParametersArgs{Srv: main, Params: tt.give})
		if !errors.As(err, &e) || optStr(e.Message) != tt.wantMsg {
			t.Errorf("%s: %v", tt.name, err)
		}
	}

	// Clients: one remote client and our own admin client.
	cl := d.client(t, d.ro, "storage:///system", 0)
	if _, err := cl.ConnectGetType(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := a.ServerListClients(ctx, &admin.ServerListClientsArgs{Srv: main, NeedResults: 1})
	if err != nil || list.Ret != 1 || len(list.Clients) != 1 {
		t.Fatalf("clients %+v %v", list, err)
	}
	c := list.Clients[0]
	if c.Srv.Name != "virtstoraged" || c.Transport != 0 || c.Timestamp == 0 || c.ID == 0 {
		t.Errorf("client %+v", c)
	}
	if l, err := a.ServerLookupClient(ctx, &admin.ServerLookupClientArgs{Srv: main, ID: c.ID}); err != nil || l.Clnt != c {
		t.Errorf("lookup client %+v %v", l, err)
	}
	_, err = a.ServerLookupClient(ctx, &admin.ServerLookupClientArgs{Srv: main, ID: 9999})
	if !errors.As(err, &e) || e.Code != 96 || optStr(e.Message) != "Client not found: No client with matching ID '9999'" {
		t.Errorf("unknown client: %v", err)
	}
	info, err := a.ClientGetInfo(ctx, &admin.ClientGetInfoArgs{Clnt: c})
	if err != nil {
		t.Fatal(err)
	}
	ip := params(info.Params)
	if ip["readonly"].Type != 6 || ip["readonly"].B != 1 || ip["unix_user_id"].I != int32(os.Getuid()) ||
		ip["unix_process_id"].I != int32(os.Getpid()) || ip["unix_group_id"].I != int32(os.Getgid()) || ip["unix_user_name"].S == "" {
		t.Errorf("client info %+v", info.Params)
	}

	lim, err := a.ServerGetClientLimits(ctx, &admin.ServerGetClientLimitsArgs{Srv: main})
	if got := params(lim.Params); err != nil || got["nclients_max"].Ui != 5000 || got["nclients"].Ui != 1 || got["nclients_unauth_max"].Ui != 20 {
		t.Errorf("client limits %+v %v", lim, err)
	}
	if err := a.ServerSetClientLimits(ctx, &admin.ServerSetClientLimitsArgs{Srv: main, Params: []admin.TypedParam{uintP("nclients_max", 10), uintP("nclients_unauth_max", 5)}}); err != nil {
		t.Error(err)
	}
	// The texts of this file were measured against libvirtd 9.0 with virt-admin.
	err = a.ServerSetClientLimits(ctx, &admin.ServerSetClientLimitsArgs{Srv: main, Params: []admin.TypedParam{uintP("nclients_max", 1)}})
	if !errors.As(err, &e) || optStr(e.Message) != "invalid argument: The overall maximum number of clients waiting for authentication must not be less than the overall maximum number of clients" {
		t.Errorf("nclients_max below nclients_unauth_max: %v", err)
	}

	if err := a.ClientClose(ctx, &admin.ClientCloseArgs{Clnt: c}); err != nil {
		t.Fatal(err)
	}
	<-cl.Conn().Done()

	// Logging.
	outs, err := a.ConnectGetLoggingOutputs(ctx, &admin.ConnectGetLoggingOutputsArgs{})
	if err != nil || outs.Outputs != "3:file:/var/log/virtstoraged.log" || outs.Noutputs != 1 {
		t.Errorf("outputs %+v %v", outs, err)
	}
	filt, err := a.ConnectGetLoggingFilters(ctx, &admin.ConnectGetLoggingFiltersArgs{})
	if err != nil || len(filt.Filters) != 0 || filt.Nfilters != 0 {
		t.Errorf("empty filters %+v %v", filt, err)
	}
	if err := a.ConnectSetLoggingFilters(ctx, &admin.ConnectSetLoggingFiltersArgs{Filters: admin.OptString{"1:storage 3:rpc"}}); err != nil {
		t.Fatal(err)
	}
	filt, _ = a.ConnectGetLoggingFilters(ctx, &admin.ConnectGetLoggingFiltersArgs{})
	if len(filt.Filters) != 1 || filt.Filters[0] != "1:storage 3:rpc" || filt.Nfilters != 2 {
		t.Errorf("filters %+v", filt)
	}
	if err := a.ConnectSetLoggingOutputs(ctx, &admin.ConnectSetLoggingOutputsArgs{}); err != nil || lc.Outputs() != "3:stderr" {
		t.Errorf("reset outputs: %v, %q", err, lc.Outputs())
	}
	if err := a.ConnectSetLoggingOutputs(ctx, &admin.ConnectSetLoggingOutputsArgs{Outputs: admin.OptString{"bogus"}}); !errors.As(err, &e) || e.Code != 1 {
		t.Errorf("bad outputs: %v", err)
	}

	if err := a.ConnectSetDaemonTimeout(ctx, &admin.ConnectSetDaemonTimeoutArgs{Timeout: 120}); err != nil || timeout != 120 {
		t.Errorf("daemon timeout %v %d", err, timeout)
	}
	err = a.ServerUpdateTLSFiles(ctx, &admin.ServerUpdateTLSFilesArgs{Srv: main})
	if !errors.As(err, &e) || e.Code != 1 || optStr(e.Message) != "internal error: no tls service found, unable to update tls files" {
		t.Errorf("update tls: %v", err)
	}
}

func TestAdminWithoutHooks(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	a := adminClient(t, d)
	var e *virnet.Error
	_, err := a.ConnectGetLoggingOutputs(ctx5(t), &admin.ConnectGetLoggingOutputsArgs{})
	if !errors.As(err, &e) || e.Code != 3 {
		t.Errorf("outputs without LogControl: %v", err)
	}
	if err := a.ConnectSetDaemonTimeout(ctx5(t), &admin.ConnectSetDaemonTimeoutArgs{Timeout: 1}); !errors.As(err, &e) || e.Code != 3 {
		t.Errorf("timeout without hook: %v", err)
	}
}

func TestAdminThreadpoolLimitsCalls(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	a := adminClient(t, d)
	main := admin.Server{Name: "virtstoraged"}
	if err := a.ServerSetThreadpoolParameters(ctx5(t), &admin.ServerSetThreadpoolParametersArgs{Srv: main,
		Params: []admin.TypedParam{uintP("minWorkers", 1), uintP("maxWorkers", 1), uintP("prioWorkers", 0)}}); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(78+1), 1, nil) // POOL_BUILD with bad args fails fast and frees the worker
	r.recv()
	r.call(84, 2, rawPayload(append(be32(4), []byte("slow")...)))
	<-d.api.entered
	tp, err := a.ServerGetThreadpoolParameters(ctx5(t), &admin.ServerGetThreadpoolParametersArgs{Srv: main})
	if err != nil {
		t.Fatal(err)
	}
	if got := params(tp.Params); got["freeWorkers"].Ui != 0 || got["nWorkers"].Ui != 1 {
		t.Errorf("busy pool %+v", tp.Params)
	}
	// With no free and no priority worker, another call queues.
	r.call(3, 3, nil)
	waitFor(t, func() bool {
		tp, _ := a.ServerGetThreadpoolParameters(ctx5(t), &admin.ServerGetThreadpoolParametersArgs{Srv: main})
		return params(tp.Params)["jobQueueDepth"].Ui == 1
	})
	d.api.releaseSlow()
	r.recv()
	r.recv()
}
