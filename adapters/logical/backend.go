// Package logical is the "logical" pool backend: a pool is an LVM volume
// group, its volumes are the group's logical volumes. Every LVM command runs
// through a ports.CommandRunner; the command lines come from the pure
// builders in argv.go (libvirt's own where libvirt has the operation) and
// their reports are read by report.go.
//
// Beyond libvirt, a pool whose source name is "VG/THINPOOL" serves the thin
// LVs of one LVM thin pool (docs/logical-thin.md): volumes are created thin,
// their capacity is what is provisioned and their allocation what is used, and
// the pool's figures are the thin pool's.
package logical

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/adapters/luks"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*Backend)(nil)

// LVM2Member is the signature blkid reports for an LVM physical volume.
const LVM2Member = "LVM2_member"

// wipeBytes is how much libvirt zeroes at each end of a device before pvcreate.
const wipeBytes = 1 << 20

// Backend serves logical pools.
type Backend struct {
	runner ports.CommandRunner
	log    *logrus.Entry
	// Keys reads the passphrases of LUKS-encrypted volumes for qemu-img; nil
	// refuses them.
	Keys *luks.Keys
}

// New returns the logical backend; every LVM, blkid, scrub and qemu-img
// command goes through runner.
func New(runner ports.CommandRunner, log *logrus.Entry) *Backend {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	return &Backend{runner: runner, log: log}
}

// Source is a logical pool's <source><name>: the VG, and the thin pool LV for
// a "VG/THINPOOL" pool.
type Source struct {
	VG       string
	ThinPool string
}

// ParseSource splits the pool's source name, which defaults to the pool name.
func ParseSource(def *domain.PoolDef) Source {
	name := def.Source.Name
	if name == "" {
		name = def.Name
	}
	vg, tp, _ := strings.Cut(name, "/")
	return Source{VG: vg, ThinPool: tp}
}

// Type is PoolLogical.
func (b *Backend) Type() domain.PoolType { return domain.PoolLogical }

// DefaultVolFormat is empty: LVs carry no image format.
func (b *Backend) DefaultVolFormat() string { return "" }

// ValidatePool defaults the VG name to the pool name and the target path to
// /dev/VG, as libvirt does, and checks a VG/THINPOOL name.
func (b *Backend) ValidatePool(def *domain.PoolDef) error {
	if def.Source.Name == "" {
		def.Source.Name = def.Name
	}
	src := ParseSource(def)
	if src.VG == "" || strings.Contains(src.ThinPool, "/") || strings.HasSuffix(def.Source.Name, "/") {
		return domain.Errorf(domain.KindXMLError, "invalid logical pool source name '%s': expected VG or VG/THINPOOL", def.Source.Name)
	}
	if def.Target.Path == "" {
		def.Target.Path = "/dev/" + src.VG
	}
	return nil
}

// volPath is where an LV's device node lives. libvirt joins the target path
// and the name; a thin pool's target names the thin pool itself, so its LVs
// are found under /dev/VG.
func volPath(def *domain.PoolDef, lv string) string {
	src := ParseSource(def)
	if src.ThinPool != "" || def.Target.Path == "" {
		return "/dev/" + src.VG + "/" + lv
	}
	return strings.TrimSuffix(def.Target.Path, "/") + "/" + lv
}

func (b *Backend) run(ctx context.Context, argv []string) ([]byte, error) {
	out, err := b.runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]})
	if err != nil {
		return out, commandError(err, argv)
	}
	return out, nil
}

func devicePaths(def *domain.PoolDef) []string {
	devs := make([]string, 0, len(def.Source.Devices))
	for _, d := range def.Source.Devices {
		devs = append(devs, d.Path)
	}
	return devs
}

// listPVs runs vgscan then pvs, as libvirt does before matching a source.
func (b *Backend) listPVs(ctx context.Context) ([]PV, error) {
	if _, err := b.run(ctx, VGScanArgv()); err != nil {
		return nil, err
	}
	out, err := b.run(ctx, PVSArgv())
	if err != nil {
		return nil, err
	}
	pvs, err := ParsePVS(out)
	if err != nil {
		return nil, domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	return pvs, nil
}

// matchSource checks that the pool's VG exists and, when the pool lists
// devices, that at least one of them is a PV of it.
func (b *Backend) matchSource(ctx context.Context, def *domain.PoolDef) error {
	pvs, err := b.listPVs(ctx)
	if err != nil {
		return err
	}
	vg := ParseSource(def).VG
	var inVG []string
	for _, pv := range pvs {
		if pv.VGName == vg {
			inVG = append(inVG, pv.Name)
		}
	}
	if len(inVG) == 0 {
		return domain.Errorf(domain.KindConfigUnsupported, "cannot find logical volume group name '%s'", vg)
	}
	devs := devicePaths(def)
	if len(devs) == 0 {
		return nil
	}
	matched := 0
	for _, d := range devs {
		for _, p := range inVG {
			if p == d {
				matched++
			}
		}
	}
	if matched == 0 {
		return domain.Errorf(domain.KindConfigUnsupported, "cannot find any matching source devices for logical volume group '%s'", vg)
	}
	if matched < len(devs) {
		b.log.WithField("pool", def.Name).Warnf("logical: some source devices of volume group '%s' are not among its PVs", vg)
	}
	return nil
}

// CheckPool reports the pool active when its VG is found, so that a running
// logical pool comes back at daemon start as in libvirt.
func (b *Backend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	if err := b.matchSource(ctx, def); err != nil {
		b.log.WithField("pool", def.Name).WithError(err).Debug("logical: pool source not found")
		return false, nil
	}
	return true, nil
}

// BuildPool labels each source device as a PV (after checking it is blank,
// unless OVERWRITE, and zeroing both ends) and creates the VG over them. A
// failure removes the PV labels written so far. A VG/THINPOOL pool then gets
// its thin pool, over all the VG's free space; without devices only the thin
// pool is created, in an existing VG.
func (b *Backend) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	if flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite) != 0 {
		return domain.ErrUnsupportedFlags(flags&^(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite), "virStorageBackendLogicalBuildPool")
	}
	if err := domain.CheckBuildFlags(flags); err != nil {
		return err
	}
	src := ParseSource(def)
	devs := devicePaths(def)
	madeVG := src.ThinPool == "" || len(devs) > 0
	if madeVG {
		if err := b.buildVG(ctx, src.VG, devs, flags&domain.PoolBuildOverwrite != 0); err != nil {
			return err
		}
	}
	if src.ThinPool != "" {
		if _, err := b.run(ctx, ThinPoolCreateArgv(src)); err != nil {
			if madeVG {
				b.undoVG(ctx, src.VG, devs)
			}
			return err
		}
	}
	return nil
}

// cleanupTimeout bounds a rollback step.
const cleanupTimeout = 30 * time.Second

// cleanupContext is the context for undoing a failed step: it keeps ctx's
// values but not its cancellation, because a client that hung up (which is
// what cancelled ctx) must not leave half-built state behind.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// undoVG removes a VG this build created and the PV labels under it.
func (b *Backend) undoVG(ctx context.Context, vg string, devs []string) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if _, err := b.run(cctx, VGRemoveArgv(vg)); err != nil {
		b.log.WithError(err).Warnf("logical: cannot remove VG '%s' after a failed build", vg)
	}
	for _, d := range devs {
		if _, err := b.run(cctx, PVRemoveArgv(d)); err != nil {
			b.log.WithError(err).Warnf("logical: cannot remove PV label of '%s' after a failed build", d)
		}
	}
}

func (b *Backend) buildVG(ctx context.Context, vg string, devs []string, overwrite bool) (err error) {
	var done []string
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		for _, d := range done {
			if _, rerr := b.run(cctx, PVRemoveArgv(d)); rerr != nil {
				b.log.WithError(rerr).Warnf("logical: cannot remove PV label of '%s' after a failed build", d)
			}
		}
	}()
	for _, d := range devs {
		if !overwrite {
			if err := b.probeEmpty(ctx, d); err != nil {
				return err
			}
		}
		if err := blockdev.ZeroHeadTail(d, wipeBytes); err != nil {
			return err
		}
		if _, err := b.run(ctx, PVCreateArgv(d)); err != nil {
			return err
		}
		done = append(done, d)
	}
	_, err = b.run(ctx, VGCreateArgv(vg, devs))
	return err
}

// probeEmpty refuses a device that already carries a signature, with
// libvirt's VIR_ERR_STORAGE_POOL_BUILT texts.
func (b *Backend) probeEmpty(ctx context.Context, dev string) error {
	probe, err := blockdev.RunBlkid(ctx, b.runner, dev)
	var unreadable *blockdev.BlkidOutputError
	if errors.As(err, &unreadable) {
		return domain.Errorf(domain.KindStorageProbeFailed, "Failed to probe for format type '%s'", LVM2Member)
	}
	if err != nil {
		return commandError(err, blockdev.BlkidArgv(dev))
	}
	found := probe.Type
	if found == "" {
		found = probe.PTType
	}
	switch found {
	case "":
		return nil
	case LVM2Member:
		return domain.Errorf(domain.KindStoragePoolBuilt, "Device '%s' already formatted using '%s'", dev, found)
	default:
		return domain.Errorf(domain.KindStoragePoolBuilt, "Format of device '%s' does not match the expected format '%s', forced overwrite is necessary", dev, LVM2Member)
	}
}

// StartPool finds the VG and activates its LVs.
func (b *Backend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	if err := b.matchSource(ctx, def); err != nil {
		return err
	}
	_, err := b.run(ctx, VGChangeArgv(ParseSource(def).VG, true))
	return err
}

// StopPool deactivates the VG's LVs; LVM refuses while one is open.
func (b *Backend) StopPool(ctx context.Context, def *domain.PoolDef) error {
	_, err := b.run(ctx, VGChangeArgv(ParseSource(def).VG, false))
	return err
}

// DeletePool removes the VG with all its LVs, then the PV labels. A thin
// pool's delete removes only the thin pool LV (and its thin LVs): the VG may
// hold other LVs that are not this pool's.
func (b *Backend) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendLogicalDeletePool")
	}
	src := ParseSource(def)
	if src.ThinPool != "" {
		_, err := b.run(ctx, LVRemoveArgv(src.VG+"/"+src.ThinPool))
		return err
	}
	if _, err := b.run(ctx, VGRemoveArgv(src.VG)); err != nil && !vgMissing(err) {
		return err
	}
	// A VG already gone (an earlier delete failed after vgremove) is not an
	// error: the PVs still need their labels removed, or the delete could never
	// be finished through the API.
	var first error
	for _, d := range devicePaths(def) {
		if _, err := b.run(ctx, PVRemoveArgv(d)); err != nil && first == nil && !pvMissing(err) {
			first = err
		}
	}
	return first
}

// FindPoolSources lists every VG with its PVs, in the order pvs prints them.
func (b *Backend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	if flags != 0 {
		return nil, domain.ErrUnsupportedFlags(flags, "virStorageBackendLogicalFindPoolSources")
	}
	pvs, err := b.listPVs(ctx)
	if err != nil {
		return nil, err
	}
	return GroupSources(pvs), nil
}

// GroupSources turns a PV listing into one source per VG, skipping PVs in
// no VG.
func GroupSources(pvs []PV) []domain.PoolSource {
	var out []domain.PoolSource
	idx := map[string]int{}
	for _, pv := range pvs {
		if pv.VGName == "" {
			continue
		}
		i, ok := idx[pv.VGName]
		if !ok {
			i = len(out)
			idx[pv.VGName] = i
			out = append(out, domain.PoolSource{Name: pv.VGName, Format: "lvm2"})
		}
		out[i].Devices = append(out[i].Devices, domain.SourceDevice{Path: pv.Name})
	}
	return out
}

// RefreshPool lists the pool's LVs (lvs) and measures it (vgs, or the thin
// pool's row for a thin pool).
func (b *Backend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	src := ParseSource(def)
	rows, err := b.listLVs(ctx, src)
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	vols := Volumes(def, rows)
	for _, v := range vols {
		fillFromNode(v)
	}
	if src.ThinPool != "" {
		stats, err := ThinPoolStats(src, rows)
		return stats, vols, err
	}
	out, err := b.run(ctx, VGSArgv(src.VG))
	if err != nil {
		return domain.PoolStats{}, nil, err
	}
	vg, err := ParseVGS(out)
	if err != nil {
		return domain.PoolStats{}, nil, domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	// Allocation counts every extent in use, inactive LVs' included, as in
	// libvirt.
	return domain.PoolStats{Capacity: vg.Size, Available: vg.Free, Allocation: vg.Size - vg.Free}, vols, nil
}

func (b *Backend) listLVs(ctx context.Context, src Source) ([]LV, error) {
	out, err := b.run(ctx, LVSArgv(src))
	if err != nil {
		return nil, err
	}
	rows, err := ParseLVS(out)
	if err != nil {
		return nil, domain.Errorf(domain.KindInternal, "%s", err.Error())
	}
	return rows, nil
}

// fillFromNode reads what libvirt reads from the device node when the node
// exists (an LV that LVM could not activate has none): owner, mode, times,
// and the device's size as capacity and physical size. lvs sizes a sparse
// LV's COW area only, and the virtual origin holding its real size is a
// hidden LV that lvs without -a (libvirt's command line) does not list. A
// snapshot's backing store is described from its origin's node the same way.
func fillFromNode(v *domain.VolDef) {
	n, err := blockdev.StatNode(v.Target.Path)
	if err != nil {
		return
	}
	v.Target.Perms = n.Perms
	v.Target.Timestamps = n.Times
	if n.Block && n.Size > 0 {
		v.Capacity, v.Physical = n.Size, n.Size
	}
	if v.Backing == nil {
		return
	}
	if bn, err := blockdev.StatNode(v.Backing.Path); err == nil {
		v.Backing.Perms = bn.Perms
		v.Backing.Timestamps = bn.Times
	}
}

// ThinPoolStats gives a thin pool's figures: its data size, the part of it
// used, and the rest; marked thin so that the pool XML also shows what its
// volumes provision.
func ThinPoolStats(src Source, rows []LV) (domain.PoolStats, error) {
	for _, r := range rows {
		if r.Name == src.ThinPool && isThinPool(r) {
			used := percentOf(r.Size, r.DataPercent)
			return domain.PoolStats{Capacity: r.Size, Allocation: used, Available: r.Size - used, Thin: true}, nil
		}
	}
	return domain.PoolStats{}, domain.Errorf(domain.KindConfigUnsupported, "cannot find thin pool '%s' in logical volume group '%s'", src.ThinPool, src.VG)
}

func percentOf(size uint64, pct float64) uint64 {
	used := uint64(float64(size) * pct / 100)
	return min(used, size)
}

func isThinPool(r LV) bool { return strings.HasPrefix(r.Attr, "t") || r.SegType == "thin-pool" }

// Volumes turns lvs rows (one per segment) into the pool's volumes, with
// libvirt's rules: thin pools and inactive LVs (attr[4] '-') are not volumes,
// nor are rows without devices other than thin LVs (the virtual origin of a
// sparse LV). An LV whose state LVM cannot tell (attr[4] 'X', no
// device-mapper) is listed. A thin pool lists only its own thin LVs.
func Volumes(def *domain.PoolDef, rows []LV) []*domain.VolDef {
	src := ParseSource(def)
	byName := map[string]LV{}
	for _, r := range rows {
		if _, ok := byName[r.Name]; !ok {
			byName[r.Name] = r
		}
	}
	var vols []*domain.VolDef
	index := map[string]*domain.VolDef{}
	for _, r := range rows {
		if v, ok := index[r.Name]; ok {
			addExtents(v, r)
			continue
		}
		if isThinPool(r) || (len(r.Attr) > 4 && r.Attr[4] == '-') {
			continue
		}
		thin := r.SegType == "thin" || r.PoolLV != ""
		if len(r.Devices) == 0 && !thin {
			continue
		}
		if src.ThinPool != "" && r.PoolLV != src.ThinPool {
			continue
		}
		v := &domain.VolDef{
			Name:       r.Name,
			Key:        r.UUID,
			Type:       domain.VolBlock,
			Capacity:   r.Size,
			Allocation: r.Size,
		}
		v.HasCapacity, v.HasAllocation = true, true
		v.Target.Path = volPath(def, r.Name)
		v.Target.Perms = domain.UnsetPerms()
		switch {
		case thin && src.ThinPool != "":
			// Only a thin pool's listing asks how full each thin LV is; a
			// plain pool shows them like any LV, as libvirt does.
			v.Allocation = percentOf(r.Size, r.DataPercent)
		case r.Origin != "":
			// A snapshot's device is as big as its origin; lvs sizes the COW.
			// Some lvm versions print a sparse LV's hidden virtual origin in
			// brackets; it has no devices, so it is never a backing store.
			origin := strings.Trim(r.Origin, "[]")
			if o, ok := byName[origin]; ok {
				v.Capacity = o.Size
				if len(o.Devices) > 0 || o.SegType == "thin" {
					v.Backing = &domain.BackingStore{Path: volPath(def, origin), Perms: domain.UnsetPerms()}
				}
			}
		}
		addExtents(v, r)
		index[r.Name] = v
		vols = append(vols, v)
	}
	return vols
}

// addExtents records the extents one segment row places on the volume's
// first device: each stripe holds seg_size/stripes bytes from its first PE.
// The volume model has one source device, so stripes on other PVs are left out.
func addExtents(v *domain.VolDef, r LV) {
	if len(r.Devices) == 0 || r.ExtentSize == 0 {
		return
	}
	per := r.SegSize / uint64(len(r.Devices))
	for _, s := range r.Devices {
		if !strings.HasPrefix(s.Device, "/") {
			continue // a thin pool's hidden data LV, not a PV
		}
		if v.SourceDevice == "" {
			v.SourceDevice = s.Device
		}
		if s.Device != v.SourceDevice {
			continue
		}
		start := s.StartPE * r.ExtentSize
		v.Extents = append(v.Extents, domain.Extent{Start: start, End: start + per})
	}
}

// PrepareVol checks a new volume and fills its path and type; the key (the
// LV UUID) is known only once LVM created it.
func (b *Backend) PrepareVol(pool *domain.PoolDef, vol *domain.VolDef) error {
	if strings.Contains(vol.Name, "/") {
		return domain.Errorf(domain.KindOperationInvalid, "volume name '%s' cannot contain '/'", vol.Name)
	}
	if vol.Capacity == 0 {
		return domain.Errorf(domain.KindNoSupport, "volume capacity required for this storage pool")
	}
	if vol.Target.Encryption.Encrypted() && vol.Target.Encryption.Format != "luks" {
		return domain.Errorf(domain.KindConfigUnsupported, "storage pool only supports LUKS encrypted volumes")
	}
	src := ParseSource(pool)
	if src.ThinPool != "" {
		if vol.Backing != nil {
			return domain.Errorf(domain.KindConfigUnsupported, "backing store not supported for thin volumes of pool '%s'", pool.Name)
		}
		// A thin LV takes no space when created. HasAllocation too: the
		// service reserves a volume without an allocation at its capacity,
		// which would refuse the overcommit thin pools exist for.
		vol.Allocation, vol.HasAllocation = 0, true
	}
	vol.Type = domain.VolBlock
	vol.Target.Path = volPath(pool, vol.Name)
	vol.Target.Format = ""
	return nil
}

// BuildVol runs lvcreate, writes the LUKS header of an encrypted volume,
// then applies the volume's owner, when given, and mode to the device node:
// as libvirt, 0600 when no mode was given (udev makes dm nodes 0660). Any
// failure after lvcreate removes the LV.
//
// The passphrase of an encrypted volume is read before lvcreate: libvirt
// reads it after, and removes the LV again when the secret cannot be had;
// asking first makes the same error without creating anything.
func (b *Backend) BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	key, err := b.stage(ctx, pool, vol)
	if err != nil {
		return err
	}
	defer key.Remove()
	return b.buildLV(ctx, pool, vol, key)
}

// stage reads the passphrase of an encrypted volume for qemu-img (a nil key
// for a plain one) and applies libvirt's checks to its encryption.
func (b *Backend) stage(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) (*luks.KeyFile, error) {
	enc := vol.Target.Encryption
	if !enc.Encrypted() {
		return nil, nil
	}
	key, err := b.Keys.Stage(ctx, pool.Name, vol.Name, enc, nil)
	if err != nil {
		return nil, err
	}
	if err := luks.CheckCreate("raw", enc, "", domain.VolEncryption{}); err != nil {
		key.Remove()
		return nil, err
	}
	return key, nil
}

// buildLV creates the LV, with its LUKS header when key is set.
func (b *Backend) buildLV(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, key *luks.KeyFile) error {
	if _, err := b.run(ctx, LVCreateArgv(ParseSource(pool), vol)); err != nil {
		return err
	}
	if key != nil {
		argv := LUKSFormatArgv(vol, key.Path)
		if err := luks.Retry(ctx, b.log, func() error { _, err := b.run(ctx, argv); return err }); err != nil {
			b.removeAfterFailure(ctx, pool, vol)
			return err
		}
	}
	if err := applyPerms(vol); err != nil {
		b.removeAfterFailure(ctx, pool, vol)
		return err
	}
	return nil
}

func applyPerms(vol *domain.VolDef) error {
	p := vol.Target.Perms
	path := vol.Target.Path
	if p.Owner >= 0 || p.Group >= 0 {
		if err := unix.Chown(path, int(p.Owner), int(p.Group)); err != nil {
			return blockdev.SysErr(err, "cannot set file owner '%s'", path)
		}
	}
	mode := uint32(defaultVolMode)
	if p.Mode >= 0 {
		mode = uint32(p.Mode)
	}
	err := unix.Chmod(path, mode)
	if err != nil && p.Mode < 0 && errors.Is(err, unix.ENOENT) {
		// No node at all: LVM without device-mapper (--driverloaded n)
		// made the LV in metadata only, and there is nothing to protect.
		// A mode that was asked for still fails.
		err = nil
	}
	if err != nil {
		return blockdev.SysErr(err, "cannot set file mode '%s'", path)
	}
	return nil
}

// defaultVolMode is libvirt's VIR_STORAGE_DEFAULT_VOL_PERM_MODE.
const defaultVolMode = 0o600

func (b *Backend) removeAfterFailure(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := b.deleteLV(cctx, vol.Target.Path); err != nil {
		b.log.WithFields(logrus.Fields{"pool": pool.Name, "vol": vol.Name}).WithError(err).Warn("logical: cannot remove volume after a failed create")
	}
}

// BuildVolFrom creates the LV, then copies src into it: raw data directly,
// other image formats through qemu-img convert.
func (b *Backend) BuildVolFrom(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, srcPool *domain.PoolDef, src *domain.VolDef, flags uint32) error {
	if flags&domain.VolCreatePreallocMetadata != 0 {
		return domain.Errorf(domain.KindOperationUnsupported, "metadata preallocation is not supported for block volumes")
	}
	if flags&^domain.VolCreateReflink != 0 {
		return domain.ErrUnsupportedFlags(flags&^domain.VolCreateReflink, "storageBackendCreateRaw")
	}
	if vol.Target.Encryption.Encrypted() || src.Target.Encryption.Encrypted() {
		return b.copyEncrypted(ctx, pool, vol, src)
	}
	if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
		return err
	}
	var err error
	switch src.Target.Format {
	case "", "raw", "none", "iso":
		err = blockdev.Copy(ctx, vol.Target.Path, src.Target.Path, 0)
	default:
		argv := QemuImgConvertArgv(src.Target.Format, src.Target.Path, vol.Target.Path)
		_, err = b.run(ctx, argv)
	}
	if err != nil {
		b.removeAfterFailure(ctx, pool, vol)
		return err
	}
	return nil
}

// copyEncrypted copies src into a new LV when either is encrypted, through
// qemu-img as libvirt does from an encrypted file: the new LV (with its LUKS
// header when it is encrypted), then qemu-img convert -n with each side's
// secret, so that the copy decrypts with the new volume's own secret.
// libvirt copies the bytes instead when the source is a block device, or a
// plain raw file, which leaves a volume its secret cannot open (or a header
// overwritten by plain data); through qemu-img the data is always
// re-encrypted, or decrypted, as the definitions say.
func (b *Backend) copyEncrypted(ctx context.Context, pool *domain.PoolDef, vol, src *domain.VolDef) error {
	srcFormat := src.Target.Format
	switch srcFormat {
	case "", "none", "iso":
		srcFormat = "raw"
	}
	if src.Type == domain.VolBlock {
		srcFormat = "raw"
	}
	in := src.Target.Encryption
	if err := luks.CheckQcow("raw", vol.Target.Encryption, in); err != nil {
		return err
	}
	if err := luks.CheckRaw("raw", vol.Target.Encryption, srcFormat, in); err != nil {
		return err
	}
	// The new volume's secret first, then the source's, as libvirt reads them.
	key, err := b.stage(ctx, pool, vol)
	if err != nil {
		return err
	}
	defer key.Remove()
	var srcKey *luks.KeyFile
	if in.Encrypted() {
		if srcKey, err = b.Keys.Stage(ctx, pool.Name, src.Name, in, nil); err != nil {
			return err
		}
		defer srcKey.Remove()
	}
	if err := b.buildLV(ctx, pool, vol, key); err != nil {
		return err
	}
	argv := append([]string{"qemu-img"}, luks.ConvertArgs(
		luks.ConvertSide{Volume: src.Name, Driver: luks.Driver(srcFormat, in), Format: srcFormat, Path: src.Target.Path, Key: srcKey},
		luks.ConvertSide{Volume: vol.Name, Driver: luks.Driver("raw", vol.Target.Encryption), Format: "raw", Path: vol.Target.Path, Key: key})...)
	if _, err := b.run(ctx, argv); err != nil {
		b.removeAfterFailure(ctx, pool, vol)
		return err
	}
	return nil
}

// findLV returns the first lvs row of the volume's LV.
func (b *Backend) findLV(ctx context.Context, pool *domain.PoolDef, name string) ([]LV, LV, error) {
	rows, err := b.listLVs(ctx, ParseSource(pool))
	if err != nil {
		return nil, LV{}, err
	}
	for _, r := range rows {
		if r.Name == name {
			return rows, r, nil
		}
	}
	return nil, LV{}, domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching name '%s'", name)
}

// RefreshVol re-reads one LV's figures from lvs.
func (b *Backend) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
	rows, _, err := b.findLV(ctx, pool, vol.Name)
	if err != nil {
		return err
	}
	for _, v := range Volumes(pool, rows) {
		if v.Name == vol.Name {
			perms, enc := vol.Target.Perms, vol.Target.Encryption
			*vol = *v
			fillFromNode(vol)
			if vol.Target.Perms.Mode < 0 {
				vol.Target.Perms = perms
			}
			// LVM knows nothing of the encryption the volume was made with;
			// libvirt keeps it in the definition until the pool's next refresh.
			vol.Target.Encryption = enc
			return nil
		}
	}
	return domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching name '%s'", vol.Name)
}

// DeleteVol removes the LV; when LVM refuses (an active LV in use), it
// deactivates the LV and tries once more, as libvirt does.
func (b *Backend) DeleteVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendLogicalDeleteVol")
	}
	return b.deleteLV(ctx, vol.Target.Path)
}

func (b *Backend) deleteLV(ctx context.Context, path string) error {
	_, err := b.run(ctx, LVRemoveArgv(path))
	if err == nil {
		return nil
	}
	if _, cerr := b.run(ctx, LVChangeDeactivateArgv(path)); cerr != nil {
		return err
	}
	_, err = b.run(ctx, LVRemoveArgv(path))
	return err
}

// ResizeVol sets the LV's size with lvresize (libvirt has no resize for
// logical pools). Shrinking needs the SHRINK flag; snapshots are refused
// because lvresize would change their COW area, not what the guest sees.
func (b *Backend) ResizeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, capacity uint64, flags uint32) error {
	if flags&^(domain.VolResizeAllocate|domain.VolResizeShrink) != 0 {
		return domain.ErrUnsupportedFlags(flags&^(domain.VolResizeAllocate|domain.VolResizeShrink), "virStorageBackendLogicalResizeVol")
	}
	_, lv, err := b.findLV(ctx, pool, vol.Name)
	if err != nil {
		return err
	}
	if strings.HasPrefix(lv.Attr, "s") {
		return domain.Errorf(domain.KindOperationUnsupported, "cannot resize snapshot logical volume '%s'", vol.Target.Path)
	}
	shrink := capacity < lv.Size
	if shrink && flags&domain.VolResizeShrink == 0 {
		return domain.Errorf(domain.KindInvalidArg, "Can't shrink capacity below current capacity unless shrink flag explicitly specified")
	}
	if capacity == lv.Size {
		return nil
	}
	_, err = b.run(ctx, LVResizeArgv(ParseSource(pool).VG, vol.Name, capacity, shrink))
	return err
}

// WipeVol wipes the LV's device; sparse and snapshot LVs are refused as in
// libvirt, since writing them fills the COW area.
func (b *Backend) WipeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, algorithm domain.WipeAlgorithm, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendLogicalVolWipe")
	}
	_, lv, err := b.findLV(ctx, pool, vol.Name)
	if err != nil {
		return err
	}
	if strings.HasPrefix(lv.Attr, "s") {
		return domain.Errorf(domain.KindNoSupport, "logical volume '%s' is sparse, volume wipe not supported", vol.Target.Path)
	}
	if err := blockdev.Wipe(ctx, b.runner, vol.Target.Path, algorithm); err != nil {
		return err
	}
	// The wipe overwrote the LUKS header with the rest: the LV is no longer
	// encrypted, and libvirt's vol-dumpxml of it shows no <encryption> (the
	// refresh that follows would otherwise keep what it was made with).
	vol.Target.Encryption = domain.VolEncryption{}
	return nil
}

// UploadVol streams into the LV's device.
func (b *Backend) UploadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	return blockdev.Upload(vol.Target.Path, offset, length, flags, "virStorageBackendVolUploadLocal")
}

// DownloadVol streams from the LV's device.
func (b *Backend) DownloadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	return blockdev.Download(vol.Target.Path, offset, length, flags, "virStorageBackendVolDownloadLocal")
}

// vgMissing reports whether a failed vgremove says the VG does not exist.
func vgMissing(err error) bool { return stderrSays(err, "not found") }

// pvMissing reports whether a failed pvremove says the device has no PV label
// (an earlier, partly failed delete already removed it).
func pvMissing(err error) bool { return stderrSays(err, "No PV found on device") }

func stderrSays(err error, text string) bool {
	var xe *ports.ExitError
	return errors.As(err, &xe) && strings.Contains(xe.Stderr, text)
}
