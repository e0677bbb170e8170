// Package rpc serves libvirt's RPC protocol on UNIX sockets: framing, the
// keepalive, remote and admin programs, read-only enforcement, data streams and
// storage pool events. It turns calls into ports.StorageAPI calls and errors into
// libvirt's remote_error (errors.go); the facts it follows are in
// shared/docs/protocol.md.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// ListenerKind says what a listening socket serves.
type ListenerKind int

const (
	// ListenRW is the main socket: remote program, read-write unless the client
	// opens read-only.
	ListenRW ListenerKind = iota
	// ListenRO is the -ro socket: remote program, always read-only.
	ListenRO
	// ListenAdmin is the -admin-sock socket: admin program only.
	ListenAdmin
)

// String returns "rw", "ro" or "admin".
func (k ListenerKind) String() string {
	switch k {
	case ListenRW:
		return "rw"
	case ListenRO:
		return "ro"
	case ListenAdmin:
		return "admin"
	}
	return fmt.Sprintf("ListenerKind(%d)", int(k))
}

// ServerLimits are the tunables of one RPC server of the daemon (libvirt's
// max_clients, max_workers, ... and their admin_ counterparts).
type ServerLimits struct {
	MaxClients          int
	MaxAnonymousClients int
	MinWorkers          int
	MaxWorkers          int
	PrioWorkers         int
	MaxClientRequests   int
	// KeepaliveInterval is the silence after which the server PINGs a client that
	// negotiated keepalive; 0 or less disables server PINGs.
	KeepaliveInterval time.Duration
	// KeepaliveCount is how many unanswered PINGs close the connection.
	KeepaliveCount int
}

// Limits holds the limits of both servers of the daemon.
type Limits struct {
	// Main applies to the rw and ro sockets (server "virtstoraged").
	Main ServerLimits
	// Admin applies to the admin socket (server "admin").
	Admin ServerLimits
}

// DefaultLimits returns libvirt's defaults.
func DefaultLimits() Limits {
	return Limits{
		Main: ServerLimits{MaxClients: 5000, MaxAnonymousClients: 20, MinWorkers: 5, MaxWorkers: 20,
			PrioWorkers: 5, MaxClientRequests: 5, KeepaliveInterval: 5 * time.Second, KeepaliveCount: 5},
		Admin: ServerLimits{MaxClients: 5000, MaxAnonymousClients: 20, MinWorkers: 1, MaxWorkers: 5,
			PrioWorkers: 0, MaxClientRequests: 5, KeepaliveInterval: 5 * time.Second, KeepaliveCount: 5},
	}
}

// LogControl is the daemon's logging setup as the admin program sees it
// (virt-admin daemon-log-outputs / daemon-log-filters).
type LogControl interface {
	Outputs() string
	Filters() string
	SetOutputs(string) error
	SetFilters(string) error
}

// PeerCredFunc returns the credentials of the process at the other end of a
// UNIX socket.
type PeerCredFunc func(net.Conn) (pid, uid, gid int32, err error)

// Config is what the RPC server needs from the rest of the daemon.
type Config struct {
	Limits Limits
	// Privileged selects storage:///system (root) rather than storage:///session.
	Privileged bool
	// LogControl serves the admin logging procedures; nil answers them "not supported".
	LogControl LogControl
	// SetDaemonTimeout applies virt-admin daemon-timeout; nil answers "not supported".
	SetDaemonTimeout func(seconds uint32) error
	// PeerCred overrides how client credentials are read (default SO_PEERCRED).
	PeerCred PeerCredFunc
	// AuthRW and AuthRO are how the clients of the read-write and read-only
	// sockets authenticate (auth_unix_rw, auth_unix_ro); the admin socket has
	// none, as in libvirt.
	AuthRW, AuthRO AuthMode
	// Polkit decides for the sockets with AuthPolkit.
	Polkit Authorizer
	// EventQueue is how many undelivered events a client may have before new ones
	// are dropped for it; 0 means 1024.
	EventQueue int
	// Now is the clock for client timestamps; nil means time.Now.
	Now func() time.Time
	// CloseLinger bounds the wait for a client to hang up after CONNECT_CLOSE;
	// 0 means DefaultCloseLinger.
	CloseLinger time.Duration
	// Observer, when set, is told every call's procedure, duration and
	// outcome, and every client's arrival and departure (metrics). nil
	// leaves the call path without a clock read.
	Observer ports.CallObserver
	// Status, when set, lets the admin program show each client's running
	// volume jobs (virt-admin client-info).
	Status ports.StatusSource
	// ReleaseMemory, when set, is called after a burst has let go of large
	// buffers (see relief in inflight.go); the daemon passes
	// debug.FreeOSMemory.
	ReleaseMemory func()
}

// Server names as virt-admin sees them.
const (
	ServerMain  = "virtstoraged"
	ServerAdmin = "admin"
)

// libVersion is what CONNECT_GET_LIB_VERSION reports: libvirt 9.0.0, the version
// whose wire behaviour we reproduce.
const libVersion = 9000000

// Server is the daemon's RPC endpoint: it accepts connections on any number of
// listeners and serves them until Shutdown.
type Server struct {
	cfg    Config
	api    ports.StorageAPI
	events *EventHub
	log    *logrus.Entry

	main, admin *service

	// recorders hold the observer's recorder of every procedure, by program
	// and number; nil without an observer.
	remoteRec, adminRec []ports.CallRecorder

	nextClientID atomic.Uint64

	relief *relief
	chunks *chunkPool

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// service is one named RPC server of the daemon with its own limits, workers and
// clients.
type service struct {
	name    string
	workers *gate

	mu      sync.Mutex
	limits  ServerLimits
	clients map[uint64]*conn

	watching atomic.Bool // the inline-call watchdog is running

	// unauth counts the clients that have yet to authenticate
	// (nclients_unauth), held to MaxAnonymousClients.
	unauth atomic.Int64
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("rpc: server closed")

// NewServer builds a server calling api and delivering events from events.
func NewServer(cfg Config, api ports.StorageAPI, events *EventHub, log *logrus.Entry) (*Server, error) {
	if api == nil {
		return nil, errors.New("rpc: nil StorageAPI")
	}
	if log == nil {
		return nil, errors.New("rpc: nil logger")
	}
	if events == nil {
		events = NewEventHub(log)
	}
	if err := validateLimits(cfg.Limits); err != nil {
		return nil, err
	}
	if err := checkAuthConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.EventQueue <= 0 {
		cfg.EventQueue = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CloseLinger <= 0 {
		cfg.CloseLinger = DefaultCloseLinger
	}
	if cfg.PeerCred == nil {
		cfg.PeerCred = peerCred
	}
	s := &Server{
		cfg:       cfg,
		api:       api,
		events:    events,
		log:       log,
		listeners: map[net.Listener]struct{}{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.relief = &relief{release: cfg.ReleaseMemory}
	s.chunks = newChunkPool(s.relief)
	s.main = newService(ServerMain, cfg.Limits.Main)
	s.admin = newService(ServerAdmin, cfg.Limits.Admin)
	if cfg.Observer != nil {
		s.remoteRec = recordersFor(cfg.Observer, "remote", remote.Procedures)
		s.adminRec = recordersFor(cfg.Observer, "admin", admin.Procedures)
	}
	return s, nil
}

// recordersFor asks the observer once for the recorder of each procedure, so
// that a call finds its recorder by index.
func recordersFor(o ports.CallObserver, program string, procs []xdr.ProcInfo) []ports.CallRecorder {
	n := 0
	for i := range procs {
		n = max(n, int(procs[i].Proc)+1)
	}
	out := make([]ports.CallRecorder, n)
	for i := range procs {
		p := &procs[i]
		if p.Async || p.Proc < 0 {
			continue
		}
		out[p.Proc] = o.Procedure(program, procName(p.Name))
	}
	return out
}

// procName is a procedure's enum name without its program prefix
// ("STORAGE_POOL_LOOKUP_BY_NAME"), as metrics label it.
func procName(name string) string {
	if _, rest, ok := strings.Cut(name, "_PROC_"); ok {
		return rest
	}
	return name
}

// recorder returns the recorder of a call's procedure, nil when nothing
// observes calls.
func (s *Server) recorder(info *xdr.ProcInfo) ports.CallRecorder {
	var recs []ports.CallRecorder
	switch info.Program {
	case progRemote:
		recs = s.remoteRec
	case progAdmin:
		recs = s.adminRec
	}
	if info.Proc >= 0 && int(info.Proc) < len(recs) {
		return recs[info.Proc]
	}
	return nil
}

// NumClients is the number of connected clients of both servers; the daemon's
// idle timeout (-t) waits for it to reach zero.
func (s *Server) NumClients() int {
	n := 0
	for _, sv := range []*service{s.main, s.admin} {
		sv.mu.Lock()
		n += len(sv.clients)
		sv.mu.Unlock()
	}
	return n
}

func newService(name string, l ServerLimits) *service {
	return &service{
		name:    name,
		workers: newGate(l.MaxWorkers, l.PrioWorkers),
		limits:  l,
		clients: map[uint64]*conn{},
	}
}

func validateLimits(l Limits) error {
	for _, sl := range []struct {
		name string
		l    ServerLimits
	}{{ServerMain, l.Main}, {ServerAdmin, l.Admin}} {
		if sl.l.MaxWorkers < 1 {
			return fmt.Errorf("rpc: server %s: max_workers must be at least 1", sl.name)
		}
		if sl.l.MinWorkers > sl.l.MaxWorkers {
			return fmt.Errorf("rpc: server %s: min_workers %d above max_workers %d", sl.name, sl.l.MinWorkers, sl.l.MaxWorkers)
		}
		if sl.l.MaxClientRequests < 1 {
			return fmt.Errorf("rpc: server %s: max_client_requests must be at least 1", sl.name)
		}
		if sl.l.MaxClients < 1 {
			return fmt.Errorf("rpc: server %s: max_clients must be at least 1", sl.name)
		}
	}
	return nil
}

// Events returns the hub the server delivers events from.
func (s *Server) Events() *EventHub { return s.events }

// SetLimits applies new limits to both servers; connections already open keep
// running, workers and per-client request slots follow the new values at once.
func (s *Server) SetLimits(l Limits) error {
	if err := validateLimits(l); err != nil {
		return err
	}
	s.main.setLimits(l.Main)
	s.admin.setLimits(l.Admin)
	return nil
}

func (sv *service) setLimits(l ServerLimits) {
	sv.mu.Lock()
	sv.limits = l
	clients := sv.clientList()
	sv.mu.Unlock()
	sv.workers.setLimits(l.MaxWorkers, l.PrioWorkers)
	for _, c := range clients {
		c.requests.setLimits(l.MaxClientRequests, 0)
	}
}

func (sv *service) getLimits() ServerLimits {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.limits
}

// clientList returns the clients ordered by id; sv.mu must be held.
func (sv *service) clientList() []*conn {
	out := make([]*conn, 0, len(sv.clients))
	for _, c := range sv.clients {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (sv *service) clientsSnapshot() []*conn {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.clientList()
}

func (sv *service) lookupClient(id uint64) *conn {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.clients[id]
}

func (s *Server) serviceFor(kind ListenerKind) *service {
	if kind == ListenAdmin {
		return s.admin
	}
	return s.main
}

func (s *Server) serviceNamed(name string) *service {
	switch name {
	case ServerMain:
		return s.main
	case ServerAdmin:
		return s.admin
	}
	return nil
}

// Serve accepts connections on ln until ln fails or Shutdown is called; it
// returns ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener, kind ListenerKind) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	log := s.log.WithField("listener", kind.String())
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				log.WithError(err).Warn("rpc: accept failed, retrying")
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("rpc: accept on %s socket: %w", kind, err)
		}
		backoff = 0
		s.accept(nc, kind, log)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) accept(nc net.Conn, kind ListenerKind, log *logrus.Entry) {
	sv := s.serviceFor(kind)
	c := newConn(s, sv, nc, kind)
	sv.mu.Lock()
	if len(sv.clients) >= sv.limits.MaxClients {
		max := sv.limits.MaxClients
		sv.mu.Unlock()
		log.WithField("client_pid", c.pid).Warnf("rpc: too many clients on server %s (max_clients=%d), dropping the new connection", sv.name, max)
		nc.Close()
		return
	}
	if c.remote != nil && c.remote.authPending() {
		if int(sv.unauth.Load()) >= sv.limits.MaxAnonymousClients {
			max := sv.limits.MaxAnonymousClients
			sv.mu.Unlock()
			log.WithField("client_pid", c.pid).Warnf("rpc: too many clients waiting to authenticate on server %s (max_anonymous_clients=%d), dropping the new connection", sv.name, max)
			nc.Close()
			return
		}
		sv.unauth.Add(1)
	}
	sv.clients[c.id] = c
	sv.mu.Unlock()
	if o := s.cfg.Observer; o != nil {
		o.ClientConnected(sv.name)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.serve()
	}()
}

func (s *Server) removeClient(c *conn) {
	c.sv.mu.Lock()
	_, known := c.sv.clients[c.id]
	delete(c.sv.clients, c.id)
	c.sv.mu.Unlock()
	if c.remote != nil {
		c.remote.authenticated() // no longer waiting, either way
	}
	if o := s.cfg.Observer; o != nil && known {
		o.ClientDisconnected(c.sv.name)
	}
	s.events.removeConn(c)
}

// Shutdown stops accepting, disconnects every client (cancelling their calls and
// streams) and waits for the connection goroutines until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.cancel()
	for _, sv := range []*service{s.main, s.admin} {
		for _, c := range sv.clientsSnapshot() {
			c.close()
		}
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	defer s.relief.stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rpc: shutdown: %w", ctx.Err())
	}
}
