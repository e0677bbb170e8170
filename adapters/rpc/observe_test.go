package rpc_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// callLog is a ports.CallObserver that counts what it is told.
type callLog struct {
	mu      sync.Mutex
	asked   map[string]bool
	calls   map[string]int
	errors  map[string]int
	clients map[string]int
	left    chan string // the server of each client that left
}

func newCallLog() *callLog {
	return &callLog{asked: map[string]bool{}, calls: map[string]int{}, errors: map[string]int{}, clients: map[string]int{},
		left: make(chan string, 16)}
}

type procRecorder struct {
	l    *callLog
	name string
}

func (l *callLog) Procedure(program, name string) ports.CallRecorder {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := program + "/" + name
	if l.asked[key] {
		panic("recorder of " + key + " asked twice")
	}
	l.asked[key] = true
	return &procRecorder{l: l, name: key}
}

func (r *procRecorder) CallDone(took time.Duration, failed bool) {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if took < 0 {
		panic("negative call duration")
	}
	r.l.calls[r.name]++
	if failed {
		r.l.errors[r.name]++
	}
}

func (l *callLog) ClientConnected(server string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clients[server]++
}

func (l *callLog) ClientDisconnected(server string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clients[server]--
	l.left <- server
}

func (l *callLog) counts(name string) (calls, errs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[name], l.errors[name]
}

func (l *callLog) connected(server string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients[server]
}

func TestObserverSeesEveryCall(t *testing.T) {
	t.Parallel()
	obs := newCallLog()
	d := startDaemon(t, func(c *rpc.Config) { c.Observer = obs })
	ctx := ctx5(t)
	if !obs.asked["remote/STORAGE_POOL_LOOKUP_BY_NAME"] || !obs.asked["admin/CLIENT_GET_INFO"] {
		t.Fatalf("recorders were not asked for at start: %d asked", len(obs.asked))
	}
	rw := d.client(t, d.rw, "storage:///system", 0)
	for range 3 {
		if _, err := rw.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: "images"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rw.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: "missing"}); err == nil {
		t.Fatal("lookup of a missing pool succeeded")
	}
	ro := d.client(t, d.ro, "storage:///system", 0)
	var e *virnet.Error
	if _, err := ro.StoragePoolDefineXML(ctx, &remote.StoragePoolDefineXMLArgs{XML: "<pool/>"}); !errors.As(err, &e) {
		t.Fatalf("define on the read-only socket: %v", err)
	}
	if calls, errs := obs.counts("remote/STORAGE_POOL_LOOKUP_BY_NAME"); calls != 4 || errs != 1 {
		t.Errorf("lookups: %d calls, %d errors; want 4 and 1", calls, errs)
	}
	if calls, errs := obs.counts("remote/STORAGE_POOL_DEFINE_XML"); calls != 1 || errs != 1 {
		t.Errorf("refused define: %d calls, %d errors; want 1 and 1", calls, errs)
	}
	if calls, errs := obs.counts("remote/CONNECT_OPEN"); calls != 2 || errs != 0 {
		t.Errorf("opens: %d calls, %d errors; want 2 and 0", calls, errs)
	}
	if n := obs.connected("virtstoraged"); n != 2 {
		t.Errorf("%d clients connected, want 2", n)
	}
	ro.Conn().Close()
	select {
	case server := <-obs.left:
		if server != "virtstoraged" {
			t.Fatalf("a client of %q left", server)
		}
	case <-ctx.Done():
		t.Fatal("the server never saw the client leave")
	}
	adminClient(t, d)
	if n := obs.connected("virtstoraged"); n != 1 {
		t.Errorf("%d clients connected after one left, want 1", n)
	}
	if n := obs.connected("admin"); n != 1 {
		t.Errorf("%d admin clients connected, want 1", n)
	}
}

func TestCallsCarryTheirClient(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	ctx := ctx5(t)
	cl := d.client(t, d.rw, "storage:///system", 0)
	if _, err := cl.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: "images"}); err != nil {
		t.Fatal(err)
	}
	a := adminClient(t, d)
	l, err := a.ServerListClients(ctx, &admin.ServerListClientsArgs{Srv: admin.Server{Name: "virtstoraged"}, NeedResults: 1})
	if err != nil || len(l.Clients) != 1 {
		t.Fatalf("clients %+v %v", l, err)
	}
	d.api.mu.Lock()
	got := d.api.lookupCallers
	d.api.mu.Unlock()
	want := ports.Caller{Server: "virtstoraged", ClientID: l.Clients[0].ID}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("lookup callers %+v, want [%+v]", got, want)
	}
}

// jobList is a ports.StatusSource with fixed jobs.
type jobList struct{ jobs []ports.JobStatus }

func (j *jobList) Pools() []ports.PoolStatus { return nil }
func (j *jobList) Jobs() ports.JobSnapshot   { return ports.JobSnapshot{Running: j.jobs} }

func TestClientInfoShowsTheClientsJobs(t *testing.T) {
	t.Parallel()
	status := &jobList{}
	now := time.Unix(1_700_000_000, 0)
	d := startDaemon(t, func(c *rpc.Config) {
		c.Status = status
		c.Now = func() time.Time { return now }
	})
	ctx := ctx5(t)
	d.client(t, d.rw, "storage:///system", 0)
	a := adminClient(t, d)
	main := admin.Server{Name: "virtstoraged"}
	l, err := a.ServerListClients(ctx, &admin.ServerListClientsArgs{Srv: main, NeedResults: 1})
	if err != nil || len(l.Clients) != 1 {
		t.Fatalf("clients %+v %v", l, err)
	}
	c := l.Clients[0]
	// Without jobs, client-info holds libvirt's parameters only.
	info, err := a.ClientGetInfo(ctx, &admin.ClientGetInfoArgs{Clnt: c})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Params {
		if strings.HasPrefix(p.Field, "job.") {
			t.Errorf("a client without jobs has %s", p.Field)
		}
	}
	me := ports.Caller{Server: "virtstoraged", ClientID: c.ID}
	other := ports.Caller{Server: "virtstoraged", ClientID: c.ID + 100}
	status.jobs = []ports.JobStatus{
		{ID: 1, Kind: domain.JobClone, Pool: "images", Vol: "copy.img", Caller: me, HasCaller: true,
			Started: now.Add(-90 * time.Second), Done: 3 << 20, Total: 10 << 20},
		{ID: 2, Kind: domain.JobWipe, Pool: "images", Vol: "other.img", Caller: other, HasCaller: true, Started: now},
		{ID: 3, Kind: domain.JobWipe, Pool: "images", Vol: "nobody.img", Started: now},
	}
	info, err = a.ClientGetInfo(ctx, &admin.ClientGetInfoArgs{Clnt: c})
	if err != nil {
		t.Fatal(err)
	}
	ip := params(info.Params)
	want := map[string]admin.TypedParamValue{
		"job.count":             {Type: 2, Ui: 1},
		"job.0.type":            {Type: 7, S: "clone"},
		"job.0.pool":            {Type: 7, S: "images"},
		"job.0.vol":             {Type: 7, S: "copy.img"},
		"job.0.bytes_done":      {Type: 4, Ul: 3 << 20},
		"job.0.bytes_total":     {Type: 4, Ul: 10 << 20},
		"job.0.elapsed_seconds": {Type: 4, Ul: 90},
	}
	for k, v := range want {
		if ip[k] != v {
			t.Errorf("%s = %+v, want %+v", k, ip[k], v)
		}
	}
	if _, ok := ip["job.1.type"]; ok {
		t.Errorf("another client's job is listed: %+v", info.Params)
	}

	// More jobs than the reply's 64 parameters hold: as many as fit, and
	// job.count tells how many there are.
	status.jobs = nil
	for i := range 20 {
		status.jobs = append(status.jobs, ports.JobStatus{ID: uint64(i + 1), Kind: domain.JobDownload, Pool: "images",
			Vol: fmt.Sprintf("v%d", i), Caller: me, HasCaller: true, Started: now})
	}
	info, err = a.ClientGetInfo(ctx, &admin.ClientGetInfoArgs{Clnt: c})
	if err != nil {
		t.Fatal(err)
	}
	ip = params(info.Params)
	if len(info.Params) > admin.ClientInfoParametersMax || ip["job.count"].Ui != 20 {
		t.Fatalf("%d parameters, job.count %d", len(info.Params), ip["job.count"].Ui)
	}
	if ip["job.8.vol"].S != "v8" || ip["job.9.vol"].S != "" {
		t.Errorf("jobs shown: job.8.vol %q, job.9.vol %q; want the first 9 (6 identity parameters and job.count leave room for 9)",
			ip["job.8.vol"].S, ip["job.9.vol"].S)
	}
}
