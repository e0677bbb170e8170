package rpc

import (
	"context"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// Typed parameter types (virTypedParameterType).
const (
	paramInt     int32 = 1
	paramUint    int32 = 2
	paramULLong  int32 = 4
	paramBoolean int32 = 6
	paramString  int32 = 7
)

// Typed parameter names virt-admin uses (libvirt-admin.h).
const (
	tpMinWorkers    = "minWorkers"
	tpMaxWorkers    = "maxWorkers"
	tpNWorkers      = "nWorkers"
	tpFreeWorkers   = "freeWorkers"
	tpPrioWorkers   = "prioWorkers"
	tpJobQueueDepth = "jobQueueDepth"

	clMaxClients       = "nclients_max"
	clCurrentClients   = "nclients"
	clMaxUnauthClients = "nclients_unauth_max"
	clUnauthClients    = "nclients_unauth"

	ciReadonly      = "readonly"
	ciUnixUserID    = "unix_user_id"
	ciUnixUserName  = "unix_user_name"
	ciUnixGroupID   = "unix_group_id"
	ciUnixGroupName = "unix_group_name"
	ciUnixProcessID = "unix_process_id"

	// Our extension of client-info: the client's running volume jobs, named
	// as libvirt names groups of typed parameters ("block.count",
	// "block.0.name"). virt-admin client-info prints every parameter it
	// gets, so it shows them as they are.
	ciJobCount      = "job.count"
	ciJobType       = "type"
	ciJobPool       = "pool"
	ciJobVol        = "vol"
	ciJobBytesDone  = "bytes_done"
	ciJobBytesTotal = "bytes_total"
	ciJobElapsed    = "elapsed_seconds"
	ciJobParams     = 6 // parameters per job
)

// adminProgram serves the ADMIN program (virt-admin) for one connection of the
// admin socket.
type adminProgram struct {
	admin.UnimplementedAdminServer
	c *conn
}

var _ admin.AdminServer = (*adminProgram)(nil)

func newAdminProgram(c *conn) *adminProgram { return &adminProgram{c: c} }

func (a *adminProgram) lookup(proc int32) *xdr.ProcInfo { return admin.Lookup(proc) }
func (a *adminProgram) check(*xdr.ProcInfo) error       { return nil }
func (a *adminProgram) scope(*xdr.ProcInfo) errorScope  { return scopeAdmin }
func (a *adminProgram) dispatch(ctx context.Context, proc int32, dec *xdr.Decoder, st xdr.Stream) (xdr.Message, error) {
	return admin.Dispatch(ctx, a, proc, dec, st)
}

func uintParam(field string, v uint32) admin.TypedParam {
	return admin.TypedParam{Field: field, Value: admin.TypedParamValue{Type: paramUint, Ui: v}}
}

func intParam(field string, v int32) admin.TypedParam {
	return admin.TypedParam{Field: field, Value: admin.TypedParamValue{Type: paramInt, I: v}}
}

func boolParam(field string, v bool) admin.TypedParam {
	return admin.TypedParam{Field: field, Value: admin.TypedParamValue{Type: paramBoolean, B: boolInt(v)}}
}

func ullongParam(field string, v uint64) admin.TypedParam {
	return admin.TypedParam{Field: field, Value: admin.TypedParamValue{Type: paramULLong, Ul: v}}
}

func stringParam(field, v string) admin.TypedParam {
	return admin.TypedParam{Field: field, Value: admin.TypedParamValue{Type: paramString, S: v}}
}

func (a *adminProgram) server(name string) (*service, error) {
	sv := a.c.srv.serviceNamed(name)
	if sv == nil {
		return nil, &domain.Error{Kind: domain.KindNoServer, Domain: fromRPC, Detail: "No server named '" + name + "'"}
	}
	return sv, nil
}

func (a *adminProgram) client(srv admin.Server, id uint64) (*conn, error) {
	sv, err := a.server(srv.Name)
	if err != nil {
		return nil, err
	}
	c := sv.lookupClient(id)
	if c == nil {
		return nil, &domain.Error{Kind: domain.KindNoClient, Domain: fromRPC, Detail: "No client with matching ID '" + strconv.FormatUint(id, 10) + "'"}
	}
	return c, nil
}

func invalidArg(detail string) error {
	return &domain.Error{Kind: domain.KindInvalidArg, Domain: fromRPC, Detail: detail}
}

// ConnectOpen accepts any admin connection on the (root-only) admin socket.
func (a *adminProgram) ConnectOpen(context.Context, *admin.ConnectOpenArgs) error { return nil }

// ConnectClose confirms; the connection hangs up after the reply.
func (a *adminProgram) ConnectClose(context.Context) error { return nil }

// ConnectGetLibVersion reports libvirt 9.0.0.
func (a *adminProgram) ConnectGetLibVersion(context.Context) (*admin.ConnectGetLibVersionRet, error) {
	return &admin.ConnectGetLibVersionRet{LibVer: libVersion}, nil
}

// ConnectListServers lists "virtstoraged" and "admin".
func (a *adminProgram) ConnectListServers(_ context.Context, args *admin.ConnectListServersArgs) (*admin.ConnectListServersRet, error) {
	ret := &admin.ConnectListServersRet{Ret: 2}
	if args.NeedResults != 0 {
		ret.Servers = []admin.Server{{Name: ServerMain}, {Name: ServerAdmin}}
	}
	return ret, nil
}

// ConnectLookupServer checks a server name.
func (a *adminProgram) ConnectLookupServer(_ context.Context, args *admin.ConnectLookupServerArgs) (*admin.ConnectLookupServerRet, error) {
	sv, err := a.server(args.Name)
	if err != nil {
		return nil, err
	}
	return &admin.ConnectLookupServerRet{Srv: admin.Server{Name: sv.name}}, nil
}

// ServerGetThreadpoolParameters reports the worker pool. Workers are goroutines
// started per call, so nWorkers is what a thread pool of minWorkers growing on
// demand would have now.
func (a *adminProgram) ServerGetThreadpoolParameters(_ context.Context, args *admin.ServerGetThreadpoolParametersArgs) (*admin.ServerGetThreadpoolParametersRet, error) {
	sv, err := a.server(args.Srv.Name)
	if err != nil {
		return nil, err
	}
	l := sv.getLimits()
	st := sv.workers.stats()
	n := max(l.MinWorkers, st.busy)
	return &admin.ServerGetThreadpoolParametersRet{Params: []admin.TypedParam{
		uintParam(tpMinWorkers, uint32(l.MinWorkers)),
		uintParam(tpMaxWorkers, uint32(st.max)),
		uintParam(tpNWorkers, uint32(n)),
		uintParam(tpFreeWorkers, uint32(n-st.busy)),
		uintParam(tpPrioWorkers, uint32(st.prio)),
		uintParam(tpJobQueueDepth, uint32(st.waiting)),
	}}, nil
}

// paramUints extracts UINT parameters, with libvirt's errors for unknown names
// and wrong types.
func paramUints(params []admin.TypedParam, allowed ...string) (map[string]uint32, error) {
	out := map[string]uint32{}
	for _, p := range params {
		known := false
		for _, n := range allowed {
			if p.Field == n {
				known = true
			}
		}
		if !known {
			return nil, &domain.Error{Kind: domain.KindArgumentUnsupported, Domain: fromNone, Detail: "parameter '" + p.Field + "' not supported"}
		}
		if p.Value.Type != paramUint {
			return nil, invalidArg("invalid type '" + typeName(p.Value.Type) + "' for parameter '" + p.Field + "', expected 'uint'")
		}
		out[p.Field] = p.Value.Ui
	}
	return out, nil
}

func typeName(t int32) string {
	names := map[int32]string{1: "int", 2: "uint", 3: "llong", 4: "ullong", 5: "double", 6: "boolean", 7: "string"}
	if n, ok := names[t]; ok {
		return n
	}
	return strconv.Itoa(int(t))
}

// ServerSetThreadpoolParameters resizes the worker pool at once.
func (a *adminProgram) ServerSetThreadpoolParameters(_ context.Context, args *admin.ServerSetThreadpoolParametersArgs) error {
	sv, err := a.server(args.Srv.Name)
	if err != nil {
		return err
	}
	vals, err := paramUints(args.Params, tpMinWorkers, tpMaxWorkers, tpPrioWorkers)
	if err != nil {
		return err
	}
	sv.mu.Lock()
	l := sv.limits
	if v, ok := vals[tpMinWorkers]; ok {
		l.MinWorkers = int(v)
	}
	if v, ok := vals[tpMaxWorkers]; ok {
		l.MaxWorkers = int(v)
	}
	if v, ok := vals[tpPrioWorkers]; ok {
		l.PrioWorkers = int(v)
	}
	if l.MinWorkers > l.MaxWorkers {
		sv.mu.Unlock()
		return invalidArg("minWorkers cannot be larger than maxWorkers")
	}
	if l.MaxWorkers == 0 {
		sv.mu.Unlock()
		// libvirt's text: a pool without workers runs calls on the event
		// loop, and it refuses to switch between the two modes.
		return invalidArg("maxWorkers must not be switched from zero to non-zero and vice versa")
	}
	sv.limits = l
	sv.mu.Unlock()
	sv.workers.setLimits(l.MaxWorkers, l.PrioWorkers)
	a.c.log.WithField("server", sv.name).Infof("rpc: thread pool now min %d max %d prio %d", l.MinWorkers, l.MaxWorkers, l.PrioWorkers)
	return nil
}

func clientOut(c *conn) admin.Client {
	return admin.Client{Srv: admin.Server{Name: c.sv.name}, ID: c.id, Timestamp: c.born.Unix(), Transport: 0}
}

// ServerListClients lists a server's clients by id.
func (a *adminProgram) ServerListClients(_ context.Context, args *admin.ServerListClientsArgs) (*admin.ServerListClientsRet, error) {
	sv, err := a.server(args.Srv.Name)
	if err != nil {
		return nil, err
	}
	clients := sv.clientsSnapshot()
	if len(clients) > admin.ClientListMax {
		clients = clients[:admin.ClientListMax]
	}
	ret := &admin.ServerListClientsRet{Ret: uint32(len(clients))}
	if args.NeedResults != 0 {
		ret.Clients = make([]admin.Client, len(clients))
		for i, c := range clients {
			ret.Clients[i] = clientOut(c)
		}
	}
	return ret, nil
}

// ServerLookupClient finds a client by id.
func (a *adminProgram) ServerLookupClient(_ context.Context, args *admin.ServerLookupClientArgs) (*admin.ServerLookupClientRet, error) {
	c, err := a.client(args.Srv, args.ID)
	if err != nil {
		return nil, err
	}
	return &admin.ServerLookupClientRet{Clnt: clientOut(c)}, nil
}

// ClientGetInfo reports a client's identity from SO_PEERCRED.
func (a *adminProgram) ClientGetInfo(_ context.Context, args *admin.ClientGetInfoArgs) (*admin.ClientGetInfoRet, error) {
	c, err := a.client(args.Clnt.Srv, args.Clnt.ID)
	if err != nil {
		return nil, err
	}
	ro := c.kind == ListenRO
	if c.remote != nil {
		c.remote.mu.Lock()
		ro = c.remote.readonly
		c.remote.mu.Unlock()
	}
	params := []admin.TypedParam{boolParam(ciReadonly, ro)}
	if c.credErr == nil {
		uname, gname := strconv.Itoa(int(c.uid)), strconv.Itoa(int(c.gid))
		if u, err := user.LookupId(uname); err == nil {
			uname = u.Username
		}
		if g, err := user.LookupGroupId(gname); err == nil {
			gname = g.Name
		}
		params = append(params,
			intParam(ciUnixUserID, c.uid),
			stringParam(ciUnixUserName, uname),
			intParam(ciUnixGroupID, c.gid),
			stringParam(ciUnixGroupName, gname),
			intParam(ciUnixProcessID, c.pid),
		)
	}
	params = append(params, a.jobParams(c, len(params))...)
	return &admin.ClientGetInfoRet{Params: params}, nil
}

// jobParams describes c's running volume jobs, as many as fit beside used
// other parameters in the reply's 64; job.count says how many run. A client
// without jobs gets none of them: its client-info reads as libvirt's.
func (a *adminProgram) jobParams(c *conn, used int) []admin.TypedParam {
	src := a.c.srv.cfg.Status
	if src == nil || c.remote == nil {
		return nil
	}
	var mine []ports.JobStatus
	for _, j := range src.Jobs().Running {
		if j.HasCaller && j.Caller.Server == c.sv.name && j.Caller.ClientID == c.id {
			mine = append(mine, j)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	room := (admin.ClientInfoParametersMax - used - 1) / ciJobParams
	params := []admin.TypedParam{uintParam(ciJobCount, uint32(len(mine)))}
	now := a.c.srv.cfg.Now()
	for i, j := range mine[:min(len(mine), room)] {
		p := "job." + strconv.Itoa(i) + "."
		params = append(params,
			stringParam(p+ciJobType, j.Kind.String()),
			stringParam(p+ciJobPool, j.Pool),
			stringParam(p+ciJobVol, j.Vol),
			ullongParam(p+ciJobBytesDone, j.Done),
			ullongParam(p+ciJobBytesTotal, j.Total),
			ullongParam(p+ciJobElapsed, uint64(max(now.Sub(j.Started), 0)/time.Second)),
		)
	}
	return params
}

// ClientClose disconnects a client.
func (a *adminProgram) ClientClose(_ context.Context, args *admin.ClientCloseArgs) error {
	c, err := a.client(args.Clnt.Srv, args.Clnt.ID)
	if err != nil {
		return err
	}
	a.c.log.WithField("client_id", c.id).Info("rpc: client disconnected by the administrator")
	if c == a.c {
		// Closing ourselves: let the reply go out first.
		c.closeAfter.Store(true)
		return nil
	}
	c.close()
	return nil
}

// ServerGetClientLimits reports client limits and counts.
func (a *adminProgram) ServerGetClientLimits(_ context.Context, args *admin.ServerGetClientLimitsArgs) (*admin.ServerGetClientLimitsRet, error) {
	sv, err := a.server(args.Srv.Name)
	if err != nil {
		return nil, err
	}
	sv.mu.Lock()
	l, n := sv.limits, len(sv.clients)
	sv.mu.Unlock()
	return &admin.ServerGetClientLimitsRet{Params: []admin.TypedParam{
		uintParam(clMaxClients, uint32(l.MaxClients)),
		uintParam(clCurrentClients, uint32(n)),
		uintParam(clMaxUnauthClients, uint32(l.MaxAnonymousClients)),
		uintParam(clUnauthClients, uint32(sv.unauth.Load())),
	}}, nil
}

// ServerSetClientLimits changes client limits; clients above a lowered limit stay.
func (a *adminProgram) ServerSetClientLimits(_ context.Context, args *admin.ServerSetClientLimitsArgs) error {
	sv, err := a.server(args.Srv.Name)
	if err != nil {
		return err
	}
	vals, err := paramUints(args.Params, clMaxClients, clMaxUnauthClients)
	if err != nil {
		return err
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	l := sv.limits
	if v, ok := vals[clMaxClients]; ok {
		l.MaxClients = int(v)
	}
	if v, ok := vals[clMaxUnauthClients]; ok {
		l.MaxAnonymousClients = int(v)
	}
	if l.MaxClients < l.MaxAnonymousClients {
		// libvirt 9.0's words, the comparison they describe reversed.
		return invalidArg("The overall maximum number of clients waiting for authentication must not be less than the overall maximum number of clients")
	}
	sv.limits = l
	return nil
}

// ConnectGetLoggingOutputs reports the log outputs.
func (a *adminProgram) ConnectGetLoggingOutputs(context.Context, *admin.ConnectGetLoggingOutputsArgs) (*admin.ConnectGetLoggingOutputsRet, error) {
	lc := a.c.srv.cfg.LogControl
	if lc == nil {
		return nil, &xdr.UnsupportedError{API: "virAdmConnectGetLoggingOutputs"}
	}
	out := lc.Outputs()
	return &admin.ConnectGetLoggingOutputsRet{Outputs: out, Noutputs: uint32(len(strings.Fields(out)))}, nil
}

// ConnectGetLoggingFilters reports the log filters, NULL when there are none.
func (a *adminProgram) ConnectGetLoggingFilters(context.Context, *admin.ConnectGetLoggingFiltersArgs) (*admin.ConnectGetLoggingFiltersRet, error) {
	lc := a.c.srv.cfg.LogControl
	if lc == nil {
		return nil, &xdr.UnsupportedError{API: "virAdmConnectGetLoggingFilters"}
	}
	f := lc.Filters()
	n := len(strings.Fields(f))
	ret := &admin.ConnectGetLoggingFiltersRet{Nfilters: uint32(n)}
	if n > 0 {
		ret.Filters = admin.OptString{f}
	}
	return ret, nil
}

// ConnectSetLoggingOutputs replaces the log outputs (NULL: the default).
func (a *adminProgram) ConnectSetLoggingOutputs(_ context.Context, args *admin.ConnectSetLoggingOutputsArgs) error {
	lc := a.c.srv.cfg.LogControl
	if lc == nil {
		return &xdr.UnsupportedError{API: "virAdmConnectSetLoggingOutputs"}
	}
	v := ""
	if len(args.Outputs) > 0 {
		v = args.Outputs[0]
	}
	return lc.SetOutputs(v)
}

// ConnectSetLoggingFilters replaces the log filters (NULL: none).
func (a *adminProgram) ConnectSetLoggingFilters(_ context.Context, args *admin.ConnectSetLoggingFiltersArgs) error {
	lc := a.c.srv.cfg.LogControl
	if lc == nil {
		return &xdr.UnsupportedError{API: "virAdmConnectSetLoggingFilters"}
	}
	v := ""
	if len(args.Filters) > 0 {
		v = args.Filters[0]
	}
	return lc.SetFilters(v)
}

// ServerUpdateTLSFiles fails as libvirt does for a server without TLS: the daemon
// only listens on UNIX sockets.
func (a *adminProgram) ServerUpdateTLSFiles(_ context.Context, args *admin.ServerUpdateTLSFilesArgs) error {
	if _, err := a.server(args.Srv.Name); err != nil {
		return err
	}
	return &domain.Error{Kind: domain.KindInternal, Domain: fromRPC, Detail: "no tls service found, unable to update tls files"}
}

// ConnectSetDaemonTimeout hands the idle timeout to the daemon.
func (a *adminProgram) ConnectSetDaemonTimeout(_ context.Context, args *admin.ConnectSetDaemonTimeoutArgs) error {
	set := a.c.srv.cfg.SetDaemonTimeout
	if set == nil {
		return &xdr.UnsupportedError{API: "virAdmConnectSetDaemonTimeout"}
	}
	return set(args.Timeout)
}
