// Package iscsi is the "iscsi" pool backend: the pool is one iSCSI target on
// one portal, logged in to through open-iscsi's iscsiadm, and its volumes are
// the target's LUNs as the kernel's SCSI layer shows them (the scan is the
// scsi backend's LUNScanner). Command lines are libvirt's (viriscsi.c).
//
// Beyond libvirt: every iscsiadm that talks to a portal runs under a
// deadline, so that an unreachable portal fails a start or a discovery in
// bounded time with a clear error instead of holding the call for
// iscsiadm's own minutes of retries; the CHAP password never appears on a
// command line (record.go); an initiator IQN's interface gets the CHAP
// settings too, where libvirt sets them on the default interface only.
package iscsi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/adapters/scsi"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*Backend)(nil)

// defaultPort is the iSCSI port libvirt uses when the pool gives none.
const defaultPort = 3260

// sessionsNone is iscsiadm's exit status when no session is open.
const sessionsNone = 21

// Secrets resolves the value of a libvirt secret, the port to libvirt's
// secret driver (see the secrets work): the CHAP password of a pool's
// <auth>, named by the secret's UUID or its usage.
type Secrets interface {
	// ISCSISecret returns the value of the iscsi-usage secret auth names.
	// The caller zeroes it after use.
	ISCSISecret(ctx context.Context, auth domain.PoolAuth) ([]byte, error)
}

// Config holds the backend's programs, paths and bounds; zero fields get
// the system's values.
type Config struct {
	// Iscsiadm is open-iscsi's administration tool. libvirt runs
	// /usr/bin/iscsiadm; the default is that where it exists, else
	// "iscsiadm" through PATH.
	Iscsiadm string
	// NodesDir is open-iscsi's node record database ("/etc/iscsi/nodes").
	NodesDir string
	// SysfsRoot ("/sys"), DevDir ("/dev") and ScsiID are the LUN scan's.
	SysfsRoot, DevDir, ScsiID string
	// PortalTimeout bounds each iscsiadm call that talks to a portal
	// (discovery, login, logout): 60 s by default, which covers open-iscsi's
	// default login timeout (15 s) with its first retries.
	PortalTimeout time.Duration
	// Secrets looks up CHAP passwords; nil fails pools with <auth>.
	Secrets Secrets
}

// Backend serves iscsi pools.
type Backend struct {
	scsi.LUNVolumes
	runner ports.CommandRunner
	cfg    Config
	luns   *scsi.LUNScanner
	log    *logrus.Entry
}

// New returns the iscsi backend; iscsiadm, udevadm, scsi_id and scrub run
// through runner.
func New(runner ports.CommandRunner, cfg Config, log *logrus.Entry) *Backend {
	if cfg.Iscsiadm == "" {
		cfg.Iscsiadm = "iscsiadm"
		if _, err := os.Stat("/usr/bin/iscsiadm"); err == nil {
			cfg.Iscsiadm = "/usr/bin/iscsiadm"
		}
	}
	if cfg.NodesDir == "" {
		cfg.NodesDir = "/etc/iscsi/nodes"
	}
	if cfg.PortalTimeout == 0 {
		cfg.PortalTimeout = 60 * time.Second
	}
	luns := scsi.NewLUNScanner(runner, cfg.SysfsRoot, cfg.DevDir, cfg.ScsiID, log)
	cfg.SysfsRoot = luns.SysfsRoot
	return &Backend{LUNVolumes: scsi.LUNVolumes{Runner: runner}, runner: runner, cfg: cfg, luns: luns, log: luns.Log}
}

// Type is PoolISCSI.
func (b *Backend) Type() domain.PoolType { return domain.PoolISCSI }

// DefaultVolFormat is empty: LUNs carry no image format.
func (b *Backend) DefaultVolFormat() string { return "" }

// ValidatePool needs nothing beyond the XML rules; the source's shape is
// checked at start, as libvirt does.
func (b *Backend) ValidatePool(def *domain.PoolDef) error { return nil }

// run runs argv. An iscsiadm that cannot run fails with libvirt's
// virCommandRun texts; one that exits non-zero returns its *ports.ExitError
// wrapped so that callers that tolerate a status (as libvirt does for most
// iscsiadm calls) can.
func (b *Backend) run(ctx context.Context, argv []string) ([]byte, error) {
	return b.runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]})
}

// portalRun runs an iscsiadm that talks to portal, bounded by PortalTimeout.
func (b *Backend) portalRun(ctx context.Context, portal, what string, argv []string) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, b.cfg.PortalTimeout)
	defer cancel()
	out, err := b.run(cctx, argv)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		return out, domain.Errorf(domain.KindOperationFailed, "no answer from iSCSI portal '%s' within %s to %s", portal, b.cfg.PortalTimeout, what)
	}
	if err != nil {
		return out, blockdev.CommandError(err, argv)
	}
	return out, nil
}

// checkSource is libvirt's check of an iscsi pool's source at check, start
// and find-sources: one host with a name, one device (the target IQN).
func checkSource(def *domain.PoolDef) error {
	if len(def.Source.Hosts) != 1 {
		return domain.Errorf(domain.KindConfigUnsupported, "Expected exactly 1 host for the storage pool")
	}
	if def.Source.Hosts[0].Name == "" {
		return domain.Errorf(domain.KindInternal, "missing source host")
	}
	if len(def.Source.Devices) != 1 || def.Source.Devices[0].Path == "" {
		return domain.Errorf(domain.KindInternal, "missing source device")
	}
	return nil
}

func target(def *domain.PoolDef) string { return def.Source.Devices[0].Path }

// sessions lists the open sessions. iscsiadm's exit status is not an error
// (21: none open), as in libvirt; its stderr is returned for the message of
// a session that must exist.
func (b *Backend) sessions(ctx context.Context) ([]Session, string, error) {
	argv := SessionArgv(b.cfg.Iscsiadm)
	out, err := b.run(ctx, argv)
	var xe *ports.ExitError
	stderr := ""
	if errors.As(err, &xe) {
		stderr = xe.Stderr
	} else if err != nil {
		return nil, "", blockdev.CommandError(err, argv)
	}
	ss, perr := ParseSessions(out)
	if perr != nil {
		return nil, "", domain.Errorf(domain.KindInternal, "reading iscsiadm sessions: %s", perr.Error())
	}
	return ss, stderr, nil
}

// session finds the pool's session; must makes its absence libvirt's error.
func (b *Backend) session(ctx context.Context, def *domain.PoolDef, must bool) (Session, bool, error) {
	ss, stderr, err := b.sessions(ctx)
	if err != nil {
		return Session{}, false, err
	}
	s, ok := SessionOf(ss, target(def))
	if !ok && must {
		return Session{}, false, domain.Errorf(domain.KindInternal, "cannot find iscsiadm session: %s", strings.TrimSpace(stderr))
	}
	return s, ok, nil
}

// CheckPool reports the pool active when a session to its target is open.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	if err := checkSource(def); err != nil {
		return false, err
	}
	_, ok, err := b.session(ctx, def, false)
	return ok, err
}

// StartPool logs in unless a session to the target is already open: the
// static node record first, then the CHAP settings, then the login
// (through an interface carrying the pool's initiator IQN, when it names
// one).
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	if err := checkSource(def); err != nil {
		return err
	}
	if _, ok, err := b.session(ctx, def, false); err != nil || ok {
		return err
	}
	portal := portalOf(def.Source.Hosts[0])
	if err := b.nodeNew(ctx, portal, target(def)); err != nil {
		return err
	}
	iface := ""
	if def.Source.Initiator != "" {
		var err error
		if iface, err = b.initiatorIface(ctx, portal, def.Source.Initiator); err != nil {
			return err
		}
	}
	if err := b.setAuth(ctx, portal, def); err != nil {
		return err
	}
	_, err := b.portalRun(ctx, portal, "log in to target '"+target(def)+"'", LoginArgv(b.cfg.Iscsiadm, portal, target(def), iface))
	return err
}

// nodeNew creates the node record, with libvirt's texts.
func (b *Backend) nodeNew(ctx context.Context, portal, tgt string) error {
	_, err := b.run(ctx, NodeNewArgv(b.cfg.Iscsiadm, portal, tgt))
	var xe *ports.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &xe):
		return domain.Errorf(domain.KindInternal, "%s failed new mode for target '%s' with status '%d'", b.cfg.Iscsiadm, tgt, xe.Code)
	case errors.Is(err, ports.ErrCommandNotFound):
		// libvirt runs an absolute path, and a missing one exits 127.
		return domain.Errorf(domain.KindInternal, "%s failed new mode for target '%s' with status '127'", b.cfg.Iscsiadm, tgt)
	}
	return domain.Errorf(domain.KindInternal, "Failed new node mode for target '%s'", tgt)
}

// nodeUpdate sets a record setting; iscsiadm's status is ignored, as in
// libvirt, only a failure to run it is not.
func (b *Backend) nodeUpdate(ctx context.Context, portal, tgt, name, value string) error {
	_, err := b.run(ctx, NodeUpdateArgv(b.cfg.Iscsiadm, portal, tgt, name, value))
	var xe *ports.ExitError
	if err != nil && !errors.As(err, &xe) {
		return domain.Errorf(domain.KindInternal, "Failed to update '%s' of node mode for target '%s'", name, tgt)
	}
	if err != nil {
		b.log.WithError(err).Warnf("iscsi: updating '%s' of target '%s'", name, tgt)
	}
	return nil
}

// setAuth applies the pool's CHAP settings to the target's node records.
func (b *Backend) setAuth(ctx context.Context, portal string, def *domain.PoolDef) error {
	auth := def.Source.Auth
	if auth == nil {
		return nil
	}
	if auth.Type != "chap" {
		return domain.Errorf(domain.KindXMLError, "iscsi pool only supports 'chap' auth type")
	}
	if b.cfg.Secrets == nil {
		return domain.Errorf(domain.KindNoSupport, "secret lookup not available: the CHAP password of %s cannot be read", secretName(auth))
	}
	password, err := b.cfg.Secrets.ISCSISecret(ctx, *auth)
	if err != nil {
		return err
	}
	defer clear(password)
	tgt := target(def)
	if err := b.nodeUpdate(ctx, portal, tgt, "node.session.auth.authmethod", "CHAP"); err != nil {
		return err
	}
	if err := b.nodeUpdate(ctx, portal, tgt, "node.session.auth.username", auth.Username); err != nil {
		return err
	}
	return SetRecordPassword(b.cfg.NodesDir, portal, tgt, password)
}

// secretName names a secret the way libvirt's errors do.
func secretName(a *domain.PoolAuth) string {
	if a.SecretUUID != "" {
		return "the secret with uuid '" + a.SecretUUID + "'"
	}
	return "the secret with usage '" + a.SecretUsage + "'"
}

// ifaceOf finds the interface carrying initiator iqn.
func (b *Backend) ifaceOf(ctx context.Context, iqn string) (string, bool, error) {
	argv := IfaceListArgv(b.cfg.Iscsiadm)
	out, err := b.run(ctx, argv)
	if err != nil {
		return "", false, blockdev.CommandError(err, argv)
	}
	name, ok, err := IfaceOf(out, iqn)
	if err != nil {
		return "", false, domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	return name, ok, nil
}

// initiatorIface is the interface to log in through as initiator iqn: an
// existing one, or a new libvirt-iface-XXXXXXXX, which iscsiadm only knows
// to use for the target once a discovery through it has recorded the
// portal's targets (libvirt's virISCSIConnection).
func (b *Backend) initiatorIface(ctx context.Context, portal, iqn string) (string, error) {
	name, ok, err := b.ifaceOf(ctx, iqn)
	if err != nil || ok {
		return name, err
	}
	tmp := fmt.Sprintf("libvirt-iface-%08x", rand.Uint32())
	// iscsiadm's status is ignored, as older iscsiadm failed on success;
	// whether the interface exists afterwards decides.
	for _, argv := range [][]string{IfaceNewArgv(b.cfg.Iscsiadm, tmp), IfaceUpdateArgv(b.cfg.Iscsiadm, tmp, iqn)} {
		var xe *ports.ExitError
		if _, err := b.run(ctx, argv); err != nil && !errors.As(err, &xe) {
			return "", domain.Errorf(domain.KindInternal, "Failed to run command '%s' to create new iscsi interface", b.cfg.Iscsiadm)
		}
	}
	if name, ok, err = b.ifaceOf(ctx, iqn); err != nil {
		return "", err
	}
	if !ok {
		return "", domain.Errorf(domain.KindInternal, "Failed to create the iSCSI interface '%s' for initiator '%s'", tmp, iqn)
	}
	if _, err := b.portalRun(ctx, portal, "discover its targets", DiscoveryArgv(b.cfg.Iscsiadm, portal, name, true)); err != nil {
		return "", err
	}
	return name, nil
}

// StopPool logs out when a session is open.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error {
	if err := checkSource(def); err != nil {
		return err
	}
	if _, ok, err := b.session(ctx, def, false); err != nil || !ok {
		return err
	}
	portal := portalOf(def.Source.Hosts[0])
	iface := ""
	if def.Source.Initiator != "" {
		name, ok, err := b.ifaceOf(ctx, def.Source.Initiator)
		if err != nil {
			return err
		}
		if ok {
			iface = name
		}
	}
	_, err := b.portalRun(ctx, portal, "log out of target '"+target(def)+"'", LogoutArgv(b.cfg.Iscsiadm, portal, target(def), iface))
	return err
}

// FindPoolSources asks the portal of spec's one host for its targets: one
// source per target, with the host (port 3260 unless given) and initiator
// of the question.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	if flags != 0 {
		return nil, domain.ErrUnsupportedFlags(flags, "virStorageBackendISCSIFindPoolSources")
	}
	if spec == nil || len(spec.Hosts) == 0 {
		return nil, domain.Errorf(domain.KindInvalidArg, "hostname must be specified for iscsi sources")
	}
	if len(spec.Hosts) != 1 {
		return nil, domain.Errorf(domain.KindConfigUnsupported, "Expected exactly 1 host for the storage pool")
	}
	host := spec.Hosts[0]
	if host.Port == 0 {
		host.Port = defaultPort
	}
	portal := portalOf(host)
	iface := ""
	if spec.Initiator != "" {
		name, ok, err := b.ifaceOf(ctx, spec.Initiator)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, domain.Errorf(domain.KindOperationFailed, "no iSCSI interface defined for IQN %s", spec.Initiator)
		}
		iface = name
	}
	out, err := b.portalRun(ctx, portal, "discover its targets", DiscoveryArgv(b.cfg.Iscsiadm, portal, iface, false))
	if err != nil {
		return nil, err
	}
	targets, err := ParseTargets(out)
	if err != nil {
		return nil, domain.Errorf(domain.KindInternal, "reading iscsiadm discovery: %s", err.Error())
	}
	sources := make([]domain.PoolSource, 0, len(targets))
	for _, t := range targets {
		sources = append(sources, domain.PoolSource{
			Hosts:     []domain.SourceHost{host},
			Devices:   []domain.SourceDevice{{Path: t.IQN}},
			Initiator: spec.Initiator,
		})
	}
	return sources, nil
}

// RefreshPool rescans the session's LUNs and lists them: the session's SCSI
// host is the one its sysfs entry's target belongs to.
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	if err := checkSource(def); err != nil {
		return domain.PoolStats{}, nil, err
	}
	s, _, err := b.session(ctx, def, true)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	argv := RescanArgv(b.cfg.Iscsiadm, s.ID)
	if _, err := b.run(ctx, argv); err != nil {
		return domain.PoolStats{}, nil, blockdev.CommandError(err, argv)
	}
	host, err := b.sessionHost(ctx, s.ID)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	return b.luns.Scan(ctx, def, host)
}

// sessionHost is libvirt's virStorageBackendISCSIGetHostNumber: the H of the
// first "targetH:B:T" entry of SYSFS/class/iscsi_session/sessionSID/device.
func (b *Backend) sessionHost(ctx context.Context, sid string) (uint32, error) {
	if _, err := b.run(ctx, scsi.SettleArgv()); err != nil {
		b.log.WithError(err).Debug("iscsi: udevadm settle failed")
	}
	dir := filepath.Join(b.cfg.SysfsRoot, "class", "iscsi_session", "session"+sid, "device")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, blockdev.SysErr(err, "cannot open directory '%s'", dir)
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "target")
		if !ok {
			continue
		}
		h, _, _ := strings.Cut(rest, ":")
		n, err := scsi.HostNumber("host" + h)
		if err != nil {
			return 0, domain.Errorf(domain.KindInternal, "Failed to parse target '%s'", e.Name())
		}
		return n, nil
	}
	return 0, domain.Errorf(domain.KindInternal, "Failed to get host number for iSCSI session with path '%s'", dir)
}
