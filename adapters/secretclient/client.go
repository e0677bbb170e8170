// Package secretclient reads secrets from libvirt's secret driver: virtsecretd
// on a host with libvirt's modular daemons, libvirtd on a monolithic one
// (Debian 12). The storage daemon stores no secret; like libvirt's own
// virtstoraged it connects to the secret driver over libvirt's RPC protocol,
// with the client generated from xdr/remote.x, and asks for a secret's value
// when a command needs it (a LUKS volume's passphrase, an iSCSI CHAP password,
// a Ceph key). It implements ports.SecretStore.
//
// Values never reach a log line or an error text here. The connection reads
// its frames without a read buffer and zeroes each once handled
// (rpcconn.DialScrubbed), so that a value lives only in the slice handed to
// the caller, who zeroes it after use.
package secretclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/xdr/rpcconn"
)

var _ ports.SecretStore = (*Client)(nil)

// Config says where the secret driver listens and how to speak to it.
type Config struct {
	// Socket is the secret driver's socket. Empty picks the first of
	// Candidates that exists, as libvirt's remote driver picks virtsecretd's
	// socket over libvirtd's.
	Socket string
	// Candidates are the sockets tried when Socket is empty, in order.
	Candidates []string
	// URI is the connection opened on the socket: secret:///system for a
	// system daemon.
	URI string
	// TokenFile holds the token libvirt's daemons share
	// (/run/libvirt/common/system.token). Presented as our identity, it lets
	// the secret driver hand us private secrets as it does to libvirt's own
	// storage daemon; without it (missing, unreadable) private secrets are
	// refused with the driver's "secret is private".
	TokenFile string
	// IdleTimeout closes the connection after that long unused, so that a
	// socket-activated virtsecretd may exit on its own timeout; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// DefaultIdleTimeout is how long an unused connection is kept: long enough for
// the few secret reads of one command, short beside virtsecretd's 120 s.
const DefaultIdleTimeout = 30 * time.Second

// DefaultConfig is libvirt's layout: for a system daemon the sockets in
// /run/libvirt and secret:///system; for a session daemon the ones in
// runtimeDir/libvirt ($XDG_RUNTIME_DIR) and secret:///session.
func DefaultConfig(privileged bool, runtimeDir string) Config {
	dir, uri := "/run/libvirt", "secret:///system"
	if !privileged {
		dir, uri = filepath.Join(runtimeDir, "libvirt"), "secret:///session"
	}
	return Config{
		Candidates: []string{filepath.Join(dir, "virtsecretd-sock"), filepath.Join(dir, "libvirt-sock")},
		URI:        uri,
		TokenFile:  filepath.Join(dir, "common", "system.token"),
	}
}

// Client is a connection to the secret driver, opened on first use, kept
// while used and opened again after the other daemon restarted.
type Client struct {
	cfg Config
	log *logrus.Entry

	mu       sync.Mutex
	rc       *remote.Client // nil when not connected
	inflight int
	idle     *time.Timer
}

// New returns a client for cfg; it connects on first use.
func New(cfg Config, log *logrus.Entry) *Client {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.URI == "" {
		cfg.URI = "secret:///system"
	}
	c := &Client{cfg: cfg, log: log}
	c.idle = time.AfterFunc(time.Hour, c.closeIdle)
	c.idle.Stop()
	return c
}

// LookupSecret finds a secret by UUID or by usage, as virSecretLookupByUUID
// and virSecretLookupByUsage.
func (c *Client) LookupSecret(ctx context.Context, ref domain.SecretRef, usage domain.SecretUsageType) (domain.Secret, error) {
	var s remote.Secret
	err := c.do(ctx, func(rc *remote.Client) error {
		var err error
		s, err = lookup(ctx, rc, ref, usage)
		return err
	})
	if err != nil {
		return domain.Secret{}, err
	}
	return fromWireSecret(s), nil
}

// SecretValue reads a secret's value as libvirt's virSecretGetSecretString:
// look it up, refuse a secret of another usage type, then read the value.
func (c *Client) SecretValue(ctx context.Context, ref domain.SecretRef, usage domain.SecretUsageType) ([]byte, error) {
	var value []byte
	err := c.do(ctx, func(rc *remote.Client) error {
		s, err := lookup(ctx, rc, ref, usage)
		if err != nil {
			return err
		}
		if domain.SecretUsageType(s.UsageType) != usage {
			return domain.ErrSecretUsage(fromWireSecret(s), usage)
		}
		ret, err := rc.SecretGetValue(ctx, &remote.SecretGetValueArgs{Secret: s})
		if err != nil {
			return err
		}
		value = ret.Value
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.log.WithField("secret", ref.String()).WithField("usage", usage.String()).Debug("secretclient: secret value read")
	return value, nil
}

func lookup(ctx context.Context, rc *remote.Client, ref domain.SecretRef, usage domain.SecretUsageType) (remote.Secret, error) {
	if ref.ByUUID {
		ret, err := rc.SecretLookupByUUID(ctx, &remote.SecretLookupByUUIDArgs{UUID: remote.UUID(ref.UUID)})
		if err != nil {
			return remote.Secret{}, err
		}
		return ret.Secret, nil
	}
	ret, err := rc.SecretLookupByUsage(ctx, &remote.SecretLookupByUsageArgs{UsageType: int32(usage), UsageID: ref.Usage})
	if err != nil {
		return remote.Secret{}, err
	}
	return ret.Secret, nil
}

func fromWireSecret(s remote.Secret) domain.Secret {
	return domain.Secret{UUID: domain.UUID(s.UUID), UsageType: domain.SecretUsageType(s.UsageType), UsageID: s.UsageID}
}

// do runs fn on the connection, connecting first when needed. When the
// connection turns out broken (the secret driver restarted since it was
// opened), it connects again and runs fn once more: lookups and reads change
// nothing, so a second try is always safe.
func (c *Client) do(ctx context.Context, fn func(*remote.Client) error) error {
	for attempt := 0; ; attempt++ {
		rc, err := c.acquire(ctx)
		if err != nil {
			return err
		}
		err = fn(rc)
		c.release(rc, broken(err))
		if err == nil {
			return nil
		}
		if broken(err) && attempt == 0 && ctx.Err() == nil {
			c.log.WithError(err).Debug("secretclient: connection to the secret driver lost, reconnecting")
			continue
		}
		return translate(err)
	}
}

// acquire returns the open connection, or opens one.
func (c *Client) acquire(ctx context.Context) (*remote.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle.Stop()
	if c.rc != nil {
		select {
		case <-c.rc.Conn().Done():
			c.rc = nil // the other side hung up while we were idle
		default:
		}
	}
	if c.rc == nil {
		rc, err := c.open(ctx)
		if err != nil {
			c.armIdleLocked()
			return nil, err
		}
		c.rc = rc
	}
	c.inflight++
	return c.rc, nil
}

// release ends one use of rc; a broken connection is forgotten so that the
// next use opens a new one.
func (c *Client) release(rc *remote.Client, isBroken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	if isBroken && c.rc == rc {
		c.rc = nil
		go rc.Conn().Close()
	}
	c.armIdleLocked()
}

func (c *Client) armIdleLocked() {
	if c.inflight == 0 && c.rc != nil {
		c.idle.Reset(c.cfg.IdleTimeout)
	}
}

// closeIdle closes a connection nobody used for IdleTimeout.
func (c *Client) closeIdle() {
	c.mu.Lock()
	rc := c.rc
	if c.inflight > 0 || rc == nil {
		c.mu.Unlock()
		return
	}
	c.rc = nil
	c.mu.Unlock()
	c.hangUp(rc)
	c.log.Debug("secretclient: idle connection to the secret driver closed")
}

// Close closes the connection, if open. The client stays usable: a later call
// connects again.
func (c *Client) Close() error {
	c.mu.Lock()
	c.idle.Stop()
	rc := c.rc
	c.rc = nil
	c.mu.Unlock()
	if rc != nil {
		c.hangUp(rc)
	}
	return nil
}

// hangUp says goodbye as libvirt's client does (CONNECT_CLOSE), briefly, then
// closes the socket.
func (c *Client) hangUp(rc *remote.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = rc.ConnectClose(ctx)
	_ = rc.Conn().Close()
}

// socket is the configured socket, or the first candidate that exists.
func (c *Client) socket() string {
	if c.cfg.Socket != "" {
		return c.cfg.Socket
	}
	for _, s := range c.cfg.Candidates {
		if _, err := os.Stat(s); err == nil {
			return s
		}
	}
	if n := len(c.cfg.Candidates); n > 0 {
		// None exists: name the last, libvirtd's, in the error, as libvirt does.
		return c.cfg.Candidates[n-1]
	}
	return "/run/libvirt/libvirt-sock"
}

// open connects and opens the secret driver's URI as libvirt's remote
// driver does: AUTH_LIST, CONNECT_OPEN, then the identity with the system
// token (libvirt's virGetConnectGeneric delegates it the same way).
func (c *Client) open(ctx context.Context) (*remote.Client, error) {
	sock := c.socket()
	conn, err := rpcconn.DialScrubbed(ctx, sock)
	if err != nil {
		e := oserr.System(err, "Failed to connect socket to '%s'", sock)
		e.Domain = domain.FromRPC
		return nil, e
	}
	rc := remote.NewClient(conn)
	fail := func(err error) (*remote.Client, error) {
		_ = conn.Close()
		return nil, translate(err)
	}
	auth, err := rc.AuthList(ctx)
	if err != nil {
		return fail(err)
	}
	if !offersNone(auth.Types) {
		return fail(domain.Errorf(domain.KindInternal, "unsupported authentication type %v offered by the secret driver on '%s'", auth.Types, sock))
	}
	if err := rc.ConnectOpen(ctx, &remote.ConnectOpenArgs{Name: remote.OptString{c.cfg.URI}}); err != nil {
		return fail(err)
	}
	if params := c.identity(); len(params) > 0 {
		if err := rc.ConnectSetIdentity(ctx, &remote.ConnectSetIdentityArgs{Params: params}); err != nil {
			// Not fatal: public secrets are still readable, and a private one
			// then fails with the driver's own "secret is private".
			c.log.WithError(translate(err)).Debug("secretclient: the secret driver did not take our identity")
		}
	}
	c.log.WithField("socket", sock).WithField("uri", c.cfg.URI).Debug("secretclient: connected to the secret driver")
	return rc, nil
}

func offersNone(types []remote.AuthType) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if t == remote.AuthNone {
			return true
		}
	}
	return false
}

// Typed parameter names and types of libvirt's identity (virIdentity).
const (
	identUnixUserID  = "unix-user-id"
	identUnixGroupID = "unix-group-id"
	identProcessID   = "process-id"
	identSystemToken = "system.token"
	paramLLong       = 3
	paramULLong      = 4
	paramString      = 7
	systemTokenLen   = 32 // 16 random bytes in hex
)

// identity is this daemon's identity with the system token, when the token
// file can be read.
func (c *Client) identity() []remote.TypedParam {
	if c.cfg.TokenFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.cfg.TokenFile)
	if err != nil {
		c.log.WithError(err).Debug("secretclient: no system token, private secrets will be refused")
		return nil
	}
	token := strings.TrimSpace(string(b))
	if len(token) != systemTokenLen {
		c.log.WithField("file", c.cfg.TokenFile).Debug("secretclient: system token file is malformed, not used")
		return nil
	}
	return []remote.TypedParam{
		{Field: identUnixUserID, Value: remote.TypedParamValue{Type: paramULLong, Ul: uint64(os.Getuid())}},
		{Field: identUnixGroupID, Value: remote.TypedParamValue{Type: paramULLong, Ul: uint64(os.Getgid())}},
		{Field: identProcessID, Value: remote.TypedParamValue{Type: paramLLong, L: int64(os.Getpid())}},
		{Field: identSystemToken, Value: remote.TypedParamValue{Type: paramString, S: token}},
	}
}

// broken reports an error that says the connection is gone rather than an
// answer from the secret driver.
func broken(err error) bool {
	if err == nil {
		return false
	}
	var we *virnet.Error
	if errors.As(err, &we) {
		return false
	}
	return errors.Is(err, rpcconn.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// translate turns the secret driver's error replies into domain errors with
// its code, domain and text, which go on to our client as they are (libvirt's
// virtstoraged passes virtsecretd's errors on the same way). A lost
// connection reads as libvirt's remote driver words it.
func translate(err error) error {
	var de *domain.Error
	if err == nil || errors.As(err, &de) {
		return err
	}
	var we *virnet.Error
	if errors.As(err, &we) {
		return fromWire(we)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if broken(err) {
		return &domain.Error{Kind: domain.KindSystem, Domain: domain.FromRPC, Detail: "End of file while reading data: Input/output error", Errno: int32(syscall.EIO), Err: err}
	}
	return &domain.Error{Kind: domain.KindInternal, Domain: domain.FromRPC, Detail: fmt.Sprintf("secret driver: %v", err), Err: err}
}

// fromWire rebuilds a domain error from a remote_error: the kind from the
// code, the detail from the message less the kind's prefix.
func fromWire(we *virnet.Error) *domain.Error {
	msg := ""
	if len(we.Message) > 0 {
		msg = we.Message[0]
	}
	e := &domain.Error{Domain: we.Domain, NoDomain: we.Domain == domain.FromNone}
	k, ok := domain.KindForCode(we.Code)
	if !ok {
		k = domain.KindInternal
	}
	e.Kind = k
	if p := k.Prefix(); ok && p != "" && strings.HasPrefix(msg, p) {
		e.Detail = strings.TrimPrefix(msg, p)
	} else {
		e.Detail, e.Bare = msg, true
	}
	if we.Int1 > 0 {
		e.Errno = we.Int1
	}
	return e
}
