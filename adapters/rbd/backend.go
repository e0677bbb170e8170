// Package rbd is the "rbd" pool backend: a pool is a pool of a Ceph cluster,
// its volumes are the pool's RBD images. Every operation runs the rbd or
// rados command through a ports.CommandRunner, as the logical backend runs
// LVM's, so the daemon stays pure Go and builds without Ceph's libraries;
// the command lines come from the pure builders in argv.go and their JSON
// is read by report.go. docs/rbd.md says why, and how each operation maps
// to libvirt's.
package rbd

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*Backend)(nil)

// SecretLookup gives the backend the key of a pool's <auth>: the raw value
// of the libvirt secret it names (by UUID or by usage, usage type ceph), as
// libvirt's secret driver holds it. The backend base64-encodes it for Ceph,
// as libvirt does, and wipes its copy after use. A secret that does not
// exist is a domain error of kind KindNoSecret.
type SecretLookup interface {
	CephKey(ctx context.Context, auth domain.PoolAuth) ([]byte, error)
}

// DefaultTimeout is libvirt's: what its rbd backend sets as
// client_mount_timeout, rados_mon_op_timeout and rados_osd_op_timeout.
const DefaultTimeout = 30 * time.Second

// timeoutGrace is how long past the Ceph timeouts a command may run before
// the backend kills it: long enough that Ceph's own timeout error usually
// comes first, with its text.
const timeoutGrace = 5 * time.Second

// DefaultListingTTL is how long a pool-wide listing answers for the images
// in it (see Config.ListingTTL).
const DefaultListingTTL = 5 * time.Second

// Config tunes the backend.
type Config struct {
	// Timeout bounds each call to the cluster: it is passed to Ceph as the
	// mount, monitor and OSD operation timeouts, and a metadata command still
	// running timeoutGrace after it is killed. 0 means DefaultTimeout.
	Timeout time.Duration
	// Secrets looks up the keys of pools with <auth>. Without it such pools
	// fail as libvirt does when it has no secret driver to ask; pools without
	// <auth> (clusters with auth_client_required = none) work regardless.
	Secrets SecretLookup
	// KeyDir is where each command's private key directory is made (0700,
	// removed when the command ends); "" is os.TempDir().
	KeyDir string
	// ListingTTL is how long the figures of a pool-wide listing (a refresh)
	// answer for a volume's info and XML instead of a command per volume;
	// our own changes to an image drop its figures at once. 0 means
	// DefaultListingTTL; negative disables the reuse.
	ListingTTL time.Duration
}

// Backend serves rbd pools.
type Backend struct {
	runner ports.CommandRunner
	cfg    Config
	log    *logrus.Entry
	now    func() time.Time
	// snapNumber picks the number of a new clone snapshot, libvirt-N.
	snapNumber func() int

	mu sync.Mutex
	// keys holds each started pool's key (base64), looked up once per start
	// or refresh and reused by every command until the pool stops.
	keys map[domain.UUID][]byte
	// listings are each pool's last pool-wide figures.
	listings map[domain.UUID]*listing
	// objSizes remembers each image's object size by pool and image id
	// (an image's object size never changes).
	objSizes map[objKey]uint64
}

type objKey struct {
	pool domain.UUID
	id   string
}

// listing is a pool's volumes as the last refresh measured them.
type listing struct {
	at   time.Time
	vols map[string]*domain.VolDef
}

// New returns the rbd backend.
func New(runner ports.CommandRunner, cfg Config, log *logrus.Entry) *Backend {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ListingTTL == 0 {
		cfg.ListingTTL = DefaultListingTTL
	}
	return &Backend{
		runner: runner, cfg: cfg, log: log, now: time.Now,
		snapNumber: func() int { return rand.IntN(65534) },
		keys:       map[domain.UUID][]byte{},
		listings:   map[domain.UUID]*listing{},
		objSizes:   map[objKey]uint64{},
	}
}

// Type is PoolRBD.
func (b *Backend) Type() domain.PoolType { return domain.PoolRBD }

// DefaultVolFormat is raw, the only format of an image.
func (b *Backend) DefaultVolFormat() string { return "raw" }

// optionName is what a <rbd:config_opts> option name may be: a Ceph option
// name, passed on the command line as --NAME=VALUE.
var optionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_ -]*$`)

// secretOptions would put key material on the command line, where any user
// can read it; <auth> with a libvirt secret is the way to give a key.
var secretOptions = map[string]bool{"key": true, "keyfile": true, "keyring": true}

// ValidatePool checks what the XML parser left to the backend: the options
// must be ones we can pass without exposing a key.
func (b *Backend) ValidatePool(def *domain.PoolDef) error {
	// The Ceph pool is named on command lines as POOL/IMAGE: a name that
	// would read as an option or split the spec cannot be passed.
	if n := def.Source.Name; strings.HasPrefix(n, "-") || strings.ContainsAny(n, "/@") {
		return domain.Errorf(domain.KindConfigUnsupported, "invalid rbd pool name '%s'", n)
	}
	for _, o := range def.RBDConfigOpts {
		if !optionName.MatchString(o.Name) {
			return domain.Errorf(domain.KindConfigUnsupported, "invalid rbd option name '%s'", o.Name)
		}
		if secretOptions[o.Name] {
			return domain.Errorf(domain.KindConfigUnsupported, "rbd option '%s' would expose a key; use <auth> with a secret", o.Name)
		}
	}
	return nil
}

// conn returns the pool's credential set, looking its key up when the pool
// has none cached (fresh forces a new lookup: a start or refresh picks up a
// changed secret, as libvirt, which looks it up on every call).
func (b *Backend) conn(ctx context.Context, def *domain.PoolDef, fresh bool) (*Conn, []byte, error) {
	c := &Conn{MonHost: MonHost(def.Source.Hosts), Timeout: b.cfg.Timeout, Opts: def.RBDConfigOpts}
	a := def.Source.Auth
	if a == nil {
		return c, nil, nil
	}
	c.User = a.Username
	b.mu.Lock()
	key := b.keys[def.UUID]
	b.mu.Unlock()
	if key != nil && !fresh {
		return c, key, nil
	}
	if b.cfg.Secrets == nil {
		return nil, nil, &domain.Error{Kind: domain.KindNoConnect, Detail: "no connection driver available for secret:///system"}
	}
	raw, err := b.cfg.Secrets.CephKey(ctx, *a)
	if err != nil {
		return nil, nil, err
	}
	key = []byte(base64.StdEncoding.EncodeToString(raw))
	clear(raw)
	// The key a command may still be writing to its file is never wiped in
	// place: it is dropped and left to the collector.
	b.mu.Lock()
	b.keys[def.UUID] = key
	b.mu.Unlock()
	return c, key, nil
}

// run runs one rbd or rados command for a pool. The key goes to a file in
// a private directory made for this command alone and removed when it ends.
// bounded commands (metadata) are killed past the timeout; data commands
// (streams, removal, resize) are bounded by Ceph's per-operation timeouts
// and the caller's context only, since they may rightly run for long.
func (b *Backend) run(ctx context.Context, c *Conn, key []byte, tool string, bounded bool, cmd ports.Command, args []string) ([]byte, error) {
	cc := *c
	if key != nil {
		dir, err := os.MkdirTemp(b.cfg.KeyDir, keyDirPrefix)
		if err != nil {
			return nil, oserr.System(err, "cannot create a directory for the cephx key")
		}
		defer os.RemoveAll(dir)
		cc.KeyFile = filepath.Join(dir, "key")
		if err := os.WriteFile(cc.KeyFile, key, 0o600); err != nil {
			return nil, oserr.System(err, "cannot write the cephx key file")
		}
	}
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.Timeout+timeoutGrace)
		defer cancel()
	}
	cmd.Path = tool
	cmd.Args = append(cc.Args(), args...)
	out, err := b.runner.Run(ctx, cmd)
	if errors.Is(err, ports.ErrCommandNotFound) {
		// Without ceph-common: libvirt's "Cannot find 'rbd' in path".
		return out, oserr.Command(err, []string{tool})
	}
	return out, err
}

// CheckPool reports an rbd pool active at daemon start when it was running
// before, as libvirt's rbd backend has no check and keeps the pool.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	return true, nil
}

// BuildPool does nothing, whatever its flags, as libvirt's rbd backend has
// no build step (its pool-build succeeds): the Ceph pool is made on the
// cluster.
func (b *Backend) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	return nil
}

// StartPool drops what an earlier run cached; the refresh that follows
// connects, as libvirt's start does.
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	b.forget(def.UUID)
	return nil
}

// StopPool drops the pool's cached key and figures.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error {
	b.forget(def.UUID)
	return nil
}

func (b *Backend) forget(u domain.UUID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.keys, u)
	delete(b.listings, u)
}

// DeletePool is not supported: the Ceph pool belongs to the cluster.
func (b *Backend) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	return domain.Errorf(domain.KindNoSupport, "pool does not support pool deletion")
}

// FindPoolSources is not supported for rbd, as in libvirt.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	return nil, domain.Errorf(domain.KindNoSupport, "source discovery is not supported for rbd pools")
}

// volDef is an image as a volume: a network volume whose key and path are
// POOL/IMAGE, raw.
func volDef(def *domain.PoolDef, name string) *domain.VolDef {
	p := Spec(def.Source.Name, name)
	return &domain.VolDef{
		Name: name, Key: p, Type: domain.VolNetwork, HasCapacity: true,
		Target: domain.VolTarget{Path: p, Format: "raw", Perms: domain.UnsetPerms()},
	}
}

// RefreshPool measures the cluster and lists the pool's images with their
// figures, in two commands whatever the number of images: rados df for the
// pool's figures (libvirt's cluster and pool stats), then rbd du for the
// images, their sizes and what each holds with <refresh><volume
// allocation='default'/>, rbd ls -l for the images and their sizes
// otherwise (their allocation is then their whole objects, libvirt's other
// measure). libvirt instead opens and measures every image in turn.
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	c, key, err := b.conn(ctx, def, true)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	pool := def.Source.Name
	out, err := b.run(ctx, c, key, "rados", true, ports.Command{}, DfArgv(pool))
	if err != nil {
		return domain.PoolStats{}, nil, b.cmdError(err, c, pool, "failed to stat the RADOS cluster")
	}
	usage, err := ParseDf(out, pool)
	if err != nil {
		return domain.PoolStats{}, nil, domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	// With allocation='default', rbd du lists the images with their sizes
	// and what they hold; otherwise (or if du fails) rbd ls -l lists them.
	var imgs []Image
	var used map[string]uint64
	if def.RefreshVolAllocation == "default" {
		out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, DuPoolArgv(pool))
		if err == nil {
			imgs, used, err = ParseDu(out)
		}
		if err != nil {
			// The figures are a nicety; the images are listed all the same.
			b.log.WithField("pool", def.Name).WithError(err).Warn("rbd: cannot measure image usage; allocation shown as whole objects")
			imgs, used = nil, nil
		}
	}
	if used == nil {
		out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, ListArgv(pool))
		if err != nil {
			return domain.PoolStats{}, nil, b.cmdError(err, c, pool, "Unable to list RBD images")
		}
		if imgs, err = ParseList(out); err != nil {
			return domain.PoolStats{}, nil, domain.Errorf(domain.KindInternal, "%s", err.Error())
		}
		b.learnObjSizes(ctx, def, c, key, imgs)
	}
	vols := make([]*domain.VolDef, 0, len(imgs))
	for _, img := range imgs {
		v := volDef(def, img.Name)
		v.Capacity = img.Size
		if u, ok := used[img.Name]; ok {
			v.Allocation = u
		} else {
			v.Allocation = b.wholeObjects(def, img)
		}
		vols = append(vols, v)
	}
	lst := &listing{at: b.now(), vols: make(map[string]*domain.VolDef, len(vols))}
	for _, v := range vols {
		lst.vols[v.Name] = v.Clone()
	}
	b.mu.Lock()
	b.listings[def.UUID] = lst
	b.mu.Unlock()
	return domain.PoolStats{Capacity: usage.Capacity, Available: usage.Available, Allocation: usage.Allocation}, vols, nil
}

// infoWorkers is how many rbd info commands learn object sizes at once.
const infoWorkers = 8

// learnObjSizes runs rbd info, infoWorkers at a time, for the images whose
// object size is not known yet (an image's never changes, so each costs
// one command in the daemon's life).
func (b *Backend) learnObjSizes(ctx context.Context, def *domain.PoolDef, c *Conn, key []byte, imgs []Image) {
	var unknown []Image
	b.mu.Lock()
	for _, img := range imgs {
		if img.Size%maxObjectSize != 0 && b.objSizes[objKey{def.UUID, img.ID}] == 0 {
			unknown = append(unknown, img)
		}
	}
	b.mu.Unlock()
	work := make(chan Image)
	var wg sync.WaitGroup
	for range min(infoWorkers, len(unknown)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for img := range work {
				out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, InfoArgv(def.Source.Name, img.Name))
				var info Info
				if err == nil {
					info, err = ParseInfo(out)
				}
				if err != nil {
					b.log.WithFields(logrus.Fields{"pool": def.Name, "vol": img.Name}).WithError(err).Debug("rbd: object size unknown; allocation shown as capacity")
					continue
				}
				b.rememberObjSize(def.UUID, info)
			}
		}()
	}
	for _, img := range unknown {
		work <- img
	}
	close(work)
	wg.Wait()
}

// maxObjectSize is the largest object size an image may have (librbd's
// order 25). Object sizes are powers of two, so an image whose size is a
// multiple of this one fills its last object whatever its object size: its
// whole objects add up to its size, and rbd info need not be asked.
const maxObjectSize = 32 << 20

// wholeObjects is libvirt's allocation without fast-diff figures: the
// image's objects times their size (the capacity when the size is unknown).
func (b *Backend) wholeObjects(def *domain.PoolDef, img Image) uint64 {
	if img.Size%maxObjectSize == 0 {
		return img.Size
	}
	b.mu.Lock()
	obj := b.objSizes[objKey{def.UUID, img.ID}]
	b.mu.Unlock()
	if obj == 0 {
		return img.Size
	}
	return (img.Size + obj - 1) / obj * obj
}

func (b *Backend) rememberObjSize(u domain.UUID, info Info) {
	if info.ID == "" || info.ObjectSize == 0 {
		return
	}
	b.mu.Lock()
	b.objSizes[objKey{u, info.ID}] = info.ObjectSize
	b.mu.Unlock()
}

// changed drops a volume's figures from the pool's listing after we changed
// the image, so that the next info reads it again.
func (b *Backend) changed(def *domain.PoolDef, name string) {
	b.mu.Lock()
	if l := b.listings[def.UUID]; l != nil {
		delete(l.vols, name)
	}
	b.mu.Unlock()
}

// listed returns a volume's figures from a listing younger than the TTL.
func (b *Backend) listed(def *domain.PoolDef, name string) *domain.VolDef {
	if b.cfg.ListingTTL < 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.listings[def.UUID]
	if l == nil || b.now().Sub(l.at) >= b.cfg.ListingTTL {
		return nil
	}
	if v := l.vols[name]; v != nil {
		return v.Clone()
	}
	return nil
}

// RefreshVol re-reads one image: from the pool's fresh listing when there is
// one, else with one command (rbd du with 'default' allocation, rbd info
// otherwise).
func (b *Backend) RefreshVol(ctx context.Context, def *domain.PoolDef, vol *domain.VolDef) error {
	if v := b.listed(def, vol.Name); v != nil {
		*vol = *v
		return nil
	}
	c, key, err := b.conn(ctx, def, false)
	if err != nil {
		return err
	}
	pool := def.Source.Name
	fresh := volDef(def, vol.Name)
	if def.RefreshVolAllocation == "default" {
		out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, DuArgv(pool, vol.Name))
		if err != nil {
			return b.cmdError(err, c, pool, "failed to open the RBD image '%s'", vol.Name)
		}
		imgs, used, err := ParseDu(out)
		if err != nil {
			return domain.Errorf(domain.KindInternal, "%s", err.Error())
		}
		for _, img := range imgs {
			if img.Name == vol.Name {
				fresh.Capacity = img.Size
			}
		}
		fresh.Allocation = used[vol.Name]
	} else {
		out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, InfoArgv(pool, vol.Name))
		if err != nil {
			return b.cmdError(err, c, pool, "failed to open the RBD image '%s'", vol.Name)
		}
		info, err := ParseInfo(out)
		if err != nil {
			return domain.Errorf(domain.KindInternal, "%s", err.Error())
		}
		b.rememberObjSize(def.UUID, info)
		fresh.Capacity = info.Size
		fresh.Allocation = info.Size
		if obj := info.ObjectSize; obj != 0 {
			fresh.Allocation = (info.Size + obj - 1) / obj * obj
		}
	}
	*vol = *fresh
	return nil
}

// PrepareVol makes the new volume a raw network volume named POOL/IMAGE;
// other formats are refused with libvirt's text.
func (b *Backend) PrepareVol(def *domain.PoolDef, vol *domain.VolDef) error {
	// '@' separates an image from its snapshot in POOL/IMAGE@SNAP.
	if strings.Contains(vol.Name, "@") {
		return domain.Errorf(domain.KindOperationInvalid, "volume name '%s' cannot contain '@' in an rbd pool", vol.Name)
	}
	if vol.Target.Format != "" && vol.Target.Format != "raw" {
		return domain.Errorf(domain.KindConfigUnsupported, "only RAW volumes are supported by this storage pool")
	}
	v := volDef(def, vol.Name)
	vol.Type, vol.Key, vol.Target.Path, vol.Target.Format = v.Type, v.Key, v.Target.Path, "raw"
	// Images are thin: a new one takes no space, whatever <allocation> says,
	// so the pool's admission check does not refuse one larger than the
	// cluster's free space (libvirt creates it too); the cluster says when
	// it is full.
	vol.Allocation, vol.HasAllocation = 0, true
	return nil
}

// BuildVol creates the image with librbd's default features, as libvirt.
func (b *Backend) BuildVol(ctx context.Context, def *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendRBDBuildVol")
	}
	if vol.Capacity == 0 {
		return domain.Errorf(domain.KindNoSupport, "volume capacity required for this storage pool")
	}
	if vol.Target.Encryption.Encrypted() {
		return domain.Errorf(domain.KindConfigUnsupported, "storage pool does not support encrypted volumes")
	}
	c, key, err := b.conn(ctx, def, false)
	if err != nil {
		return err
	}
	pool := def.Source.Name
	b.changed(def, vol.Name)
	if _, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, CreateArgv(pool, vol.Name, vol.Capacity)); err != nil {
		return b.cmdError(err, c, pool, "failed to create volume '%s/%s'", pool, vol.Name)
	}
	return nil
}

// DeleteVol removes the image; with DELETE_WITH_SNAPSHOTS its snapshots
// first, each unprotected if need be, as libvirt. An image already gone is
// not an error (libvirt ignores ENOENT too).
func (b *Backend) DeleteVol(ctx context.Context, def *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	const zeroed, withSnapshots = 1, 2
	if flags&^(zeroed|withSnapshots) != 0 {
		return domain.ErrUnsupportedFlags(flags&^(zeroed|withSnapshots), "virStorageBackendRBDDeleteVol")
	}
	if flags&zeroed != 0 {
		b.log.WithFields(logrus.Fields{"pool": def.Name, "vol": vol.Name}).Warn("This storage backend does not support zeroed removal of volumes")
	}
	c, key, err := b.conn(ctx, def, false)
	if err != nil {
		return err
	}
	pool := def.Source.Name
	b.changed(def, vol.Name)
	if flags&withSnapshots != 0 {
		if err := b.purgeSnapshots(ctx, c, key, pool, vol.Name); err != nil {
			return err
		}
	}
	if _, err := b.run(ctx, c, key, "rbd", false, ports.Command{}, RemoveArgv(pool, vol.Name)); err != nil {
		if en, ok := errno(err); ok && en == syscall.ENOENT && !notConnected(err) {
			return nil
		}
		return b.cmdError(err, c, pool, "failed to remove volume '%s/%s'", pool, vol.Name)
	}
	return nil
}

func (b *Backend) purgeSnapshots(ctx context.Context, c *Conn, key []byte, pool, image string) error {
	out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, SnapListArgv(pool, image))
	if err != nil {
		return b.cmdError(err, c, pool, "failed to open the RBD image '%s'", image)
	}
	snaps, err := ParseSnaps(out)
	if err != nil {
		return domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	for _, s := range snaps {
		if s.Protected {
			if _, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, SnapUnprotectArgv(pool, image, s.Name)); err != nil {
				return b.cmdError(err, c, pool, "failed to unprotect snapshot '%s/%s@%s'", pool, image, s.Name)
			}
		}
		if _, err := b.run(ctx, c, key, "rbd", false, ports.Command{}, SnapRemoveArgv(pool, image, s.Name)); err != nil {
			return b.cmdError(err, c, pool, "failed to remove snapshot '%s/%s@%s'", pool, image, s.Name)
		}
	}
	return nil
}

// BuildVolFrom clones src as libvirt does: from a snapshot of src that holds
// it as it is now, or else a new snapshot libvirt-N, protected, cloned with
// src's features and striping. src may be in another rbd pool of the same
// cluster (libvirt would look for it in the new volume's pool).
func (b *Backend) BuildVolFrom(ctx context.Context, def *domain.PoolDef, vol *domain.VolDef, srcDef *domain.PoolDef, src *domain.VolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendRBDBuildVolFrom")
	}
	if srcDef.Type != domain.PoolRBD || MonHost(srcDef.Source.Hosts) != MonHost(def.Source.Hosts) {
		return domain.Errorf(domain.KindConfigUnsupported, "cannot clone volume '%s' of pool '%s' into rbd pool '%s': only images of the same Ceph cluster can be cloned", src.Name, srcDef.Name, def.Name)
	}
	c, key, err := b.conn(ctx, def, false)
	if err != nil {
		return err
	}
	pool, srcPool := def.Source.Name, srcDef.Source.Name
	b.changed(def, vol.Name)
	b.changed(srcDef, src.Name)
	out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, InfoArgv(srcPool, src.Name))
	if err != nil {
		return b.cmdError(err, c, srcPool, "failed to open the RBD image %s", src.Name)
	}
	info, err := ParseInfo(out)
	if err != nil {
		return domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	if info.Format == 1 {
		return domain.Errorf(domain.KindOperationUnsupported, "RBD image %s is old format. Does not support extended features and striping", src.Name)
	}
	snap, protected, err := b.cloneSnapshot(ctx, c, key, srcPool, src.Name)
	if err != nil {
		return err
	}
	if snap == "" {
		snap = "libvirt-" + strconv.Itoa(b.snapNumber())
		if _, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, SnapCreateArgv(srcPool, src.Name, snap)); err != nil {
			return b.cmdError(err, c, srcPool, "failed to create RBD snapshot %s@%s", src.Name, snap)
		}
	}
	if !protected {
		if _, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, SnapProtectArgv(srcPool, src.Name, snap)); err != nil {
			return b.cmdError(err, c, srcPool, "failed to protect RBD snapshot %s@%s", src.Name, snap)
		}
	}
	var features []string
	for _, f := range info.Features {
		if cloneFeatures[f] {
			features = append(features, f)
		}
	}
	if _, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, CloneArgv(srcPool, src.Name, snap, pool, vol.Name, features, info.StripeUnit, info.StripeCount)); err != nil {
		return b.cmdError(err, c, pool, "failed to clone RBD volume %s to %s", src.Name, vol.Name)
	}
	// A clone larger than its source is grown (libvirt's keeps the source's
	// size, whatever the new volume's capacity says); a clone that cannot
	// be is removed, so that a failed clone leaves nothing.
	if vol.Capacity > info.Size {
		if _, err := b.run(ctx, c, key, "rbd", false, ports.Command{}, ResizeArgv(pool, vol.Name, vol.Capacity)); err != nil {
			_, _ = b.run(context.WithoutCancel(ctx), c, key, "rbd", false, ports.Command{}, RemoveArgv(pool, vol.Name))
			return b.cmdError(err, c, pool, "failed to resize the RBD clone %s to %d bytes", vol.Name, vol.Capacity)
		}
	}
	return nil
}

// cloneSnapshot finds the first snapshot of the image with no change since
// (libvirt's virStorageBackendRBDSnapshotFindNoDiff).
func (b *Backend) cloneSnapshot(ctx context.Context, c *Conn, key []byte, pool, image string) (string, bool, error) {
	out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, SnapListArgv(pool, image))
	if err != nil {
		return "", false, b.cmdError(err, c, pool, "failed to open the RBD image %s", image)
	}
	snaps, err := ParseSnaps(out)
	if err != nil {
		return "", false, domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	for _, s := range snaps {
		out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, DiffSinceArgv(pool, image, s.Name))
		if err != nil {
			return "", false, b.cmdError(err, c, pool, "failed to iterate RBD snapshot %s@%s", image, s.Name)
		}
		empty, err := ParseDiffEmpty(out)
		if err != nil {
			return "", false, domain.Errorf(domain.KindInternal, "%s", err.Error())
		}
		if empty {
			return s.Name, s.Protected, nil
		}
	}
	return "", false, nil
}

// ResizeVol sets the image's size. Like libvirt's rbd backend it takes no
// flags: shrinking (the service passes SHRINK on) and ALLOCATE are refused
// with libvirt's text.
func (b *Backend) ResizeVol(ctx context.Context, def *domain.PoolDef, vol *domain.VolDef, capacity uint64, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendRBDResizeVol")
	}
	c, key, err := b.conn(ctx, def, false)
	if err != nil {
		return err
	}
	pool := def.Source.Name
	b.changed(def, vol.Name)
	if _, err := b.run(ctx, c, key, "rbd", false, ports.Command{}, ResizeArgv(pool, vol.Name, capacity)); err != nil {
		return b.cmdError(err, c, pool, "failed to resize the RBD image '%s'", vol.Name)
	}
	return nil
}

// WipeVol wipes with libvirt's two rbd algorithms: zero writes zeros over
// the whole image (which then holds all its objects, as after libvirt's),
// trim discards it (one zeroed extent: whole objects are removed and a
// partial last object is zeroed, where libvirt's discard may leave it).
// The others are refused with libvirt's text.
func (b *Backend) WipeVol(ctx context.Context, def *domain.PoolDef, vol *domain.VolDef, algorithm domain.WipeAlgorithm, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendRBDVolWipe")
	}
	if algorithm != domain.WipeZero && algorithm != domain.WipeTrim {
		return domain.Errorf(domain.KindInvalidArg, "unsupported algorithm %d", algorithm)
	}
	c, key, err := b.conn(ctx, def, false)
	if err != nil {
		return err
	}
	pool := def.Source.Name
	b.changed(def, vol.Name)
	out, err := b.run(ctx, c, key, "rbd", true, ports.Command{}, InfoArgv(pool, vol.Name))
	if err != nil {
		return b.cmdError(err, c, pool, "failed to open the RBD image %s", vol.Name)
	}
	info, err := ParseInfo(out)
	if err != nil {
		return domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	w, err := b.startImport(ctx, def, c, key, vol.Name, algorithm == domain.WipeTrim, "failed to wipe RBD image %s", vol.Name)
	if err != nil {
		return err
	}
	if algorithm == domain.WipeTrim {
		err = w.d.zero(0, info.Size)
	} else {
		err = w.zeros(info.Size, info.ObjectSize)
	}
	if err != nil {
		return w.failure(err)
	}
	return w.Finish(ctx)
}

// UploadVol streams the upload into the image through rbd import-diff,
// from offset on; holes become zeroed extents. libvirt's rbd backend has
// no upload.
func (b *Backend) UploadVol(ctx context.Context, def *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	c, key, err := b.conn(ctx, def, false)
	if err != nil {
		return nil, err
	}
	b.changed(def, vol.Name)
	w, err := b.startImport(ctx, def, c, key, vol.Name, true, "failed to upload to RBD image '%s/%s'", def.Source.Name, vol.Name)
	if err != nil {
		return nil, err
	}
	w.pos, w.limit = offset, 0
	if length != 0 {
		w.limit = offset + length
	}
	// An image does not grow by writes: past its end is no space, as on a
	// block device.
	w.end = vol.Capacity
	w.pastEnd = oserr.Errno(syscall.ENOSPC, "failed to upload to RBD image '%s/%s'", def.Source.Name, vol.Name)
	return w, nil
}

// DownloadVol streams the image from offset through rbd export-diff, which
// gives the allocated extents in order (a clone's parent's included); what
// lies between them is sent as holes when the stream is sparse, as zeros
// otherwise. libvirt's rbd backend has no download.
func (b *Backend) DownloadVol(ctx context.Context, def *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	c, key, err := b.conn(ctx, def, false)
	if err != nil {
		return nil, err
	}
	pool := def.Source.Name
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, oserr.System(err, "cannot create a pipe")
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		_, err := b.run(ctx, c, key, "rbd", false, ports.Command{StdoutStream: pw}, ExportDiffArgv(pool, vol.Name))
		pw.Close()
		done <- err
	}()
	r := &downloadReader{
		// Reads wait at most half the timeout, as uploads' writes do.
		d:    newDiffReader(stallReader{f: pr, stall: b.cfg.Timeout / 2}, offset, length, flags&domain.StreamSparse != 0),
		pipe: pr, cancel: cancel, done: done,
		fail: func(err error) error {
			return b.cmdError(err, c, pool, "failed to download RBD image '%s/%s'", pool, vol.Name)
		},
	}
	return r, nil
}
