package domain

import (
	"encoding/hex"
	"fmt"
	"time"
)

// UUID is a pool UUID in its 16 raw bytes, as it travels on the wire.
type UUID [16]byte

// String formats the UUID as libvirt does (lower-case, dashed).
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// IsZero reports whether the UUID is all zero bytes (not yet assigned).
func (u UUID) IsZero() bool { return u == UUID{} }

// ParseUUID parses the dashed or undashed hex form libvirt accepts.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	clean := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == ' ' {
			continue
		}
		clean = append(clean, c)
	}
	if len(clean) != 32 {
		return u, fmt.Errorf("domain: malformed uuid %q", s)
	}
	if _, err := hex.Decode(u[:], clean); err != nil {
		return u, fmt.Errorf("domain: malformed uuid %q", s)
	}
	return u, nil
}

// PoolType is a storage pool backend type. The order matches libvirt's
// virStoragePoolType and the LIST_ALL_STORAGE_POOLS type filter bits (1<<6 for dir ...).
type PoolType int

// Pool types in libvirt's order.
const (
	PoolDir PoolType = iota
	PoolFS
	PoolNetFS
	PoolLogical
	PoolDisk
	PoolISCSI
	PoolSCSI
	PoolMpath
	PoolRBD
	PoolSheepdog
	PoolGluster
	PoolZFS
	PoolVstorage
	PoolISCSIDirect
	poolTypeEnd
)

var poolTypeNames = [...]string{"dir", "fs", "netfs", "logical", "disk", "iscsi", "scsi", "mpath", "rbd", "sheepdog", "gluster", "zfs", "vstorage", "iscsi-direct"}

// String returns the XML name of the pool type.
func (t PoolType) String() string {
	if t < 0 || t >= poolTypeEnd {
		return fmt.Sprintf("pooltype(%d)", int(t))
	}
	return poolTypeNames[t]
}

// ListFlag returns the LIST_ALL_STORAGE_POOLS filter bit selecting this type.
func (t PoolType) ListFlag() uint32 { return 1 << (6 + uint(t)) }

// ParsePoolType maps an XML type name to a PoolType.
func ParsePoolType(s string) (PoolType, bool) {
	for i, n := range poolTypeNames {
		if n == s {
			return PoolType(i), true
		}
	}
	return 0, false
}

// PoolState is virStoragePoolState; the storage driver only produces Inactive and Running.
type PoolState uint32

// Pool states.
const (
	PoolInactive PoolState = iota
	PoolBuilding
	PoolRunning
	PoolDegraded
	PoolInaccessible
)

// VolType is virStorageVolType.
type VolType uint32

// Volume types.
const (
	VolFile VolType = iota
	VolBlock
	VolDir
	VolNetwork
	VolNetDir
	VolPloop
)

var volTypeNames = [...]string{"file", "block", "dir", "network", "netdir", "ploop"}

// String returns the XML name of the volume type.
func (t VolType) String() string {
	if int(t) >= len(volTypeNames) {
		return fmt.Sprintf("voltype(%d)", int(t))
	}
	return volTypeNames[t]
}

// Perms are the ownership and mode of a pool target or volume. -1 means unset
// (libvirt's (uid_t)-1 convention), so that defaults can be told from zeros.
type Perms struct {
	Mode  int64 // -1 unset
	Owner int64 // -1 unset
	Group int64 // -1 unset
	Label string
}

// UnsetPerms returns Perms with every field unset.
func UnsetPerms() Perms { return Perms{Mode: -1, Owner: -1, Group: -1} }

// SourceHost is a <host name port> element of a pool source.
type SourceHost struct {
	Name string
	Port int
}

// SourceDevice is a <device path> element of a pool source.
type SourceDevice struct {
	Path          string
	PartSeparator string // "", "yes", "no"
	FreeExtents   []Extent
}

// Extent is a byte range on a device.
type Extent struct{ Start, End uint64 }

// PoolSource is the <source> of a pool, the union of what every backend uses.
type PoolSource struct {
	Hosts       []SourceHost
	Devices     []SourceDevice
	Dir         string         // netfs export path, gluster path
	Adapter     *SourceAdapter // scsi: the SCSI host
	Name        string         // logical: the VG name
	Initiator   string         // iscsi: <initiator><iqn name>, the initiator IQN to log in as
	Format      string         // fs/netfs/disk/logical source format
	ProtocolVer string         // netfs <protocol ver>
	Vendor      string
	Product     string
	// Auth is the <auth> element (rbd: cephx; iscsi: chap); nil without one.
	Auth *PoolAuth
}

// PoolAuth is a pool source's <auth>: who the pool logs in as and which
// secret of libvirt's secret driver holds the key. Only the reference lives
// in the definition; the key itself is looked up each time it is needed.
type PoolAuth struct {
	Type     string // "ceph" or "chap"
	Username string
	// Secret names the key's secret by UUID (in libvirt's dashed form) or by
	// usage; exactly one is set.
	SecretUUID  string
	SecretUsage string
	// SecretType is the optional <secret type> attribute, kept as written.
	SecretType string
}

// Ref names the secret the auth's <secret> element points at.
func (a PoolAuth) Ref() (SecretRef, error) {
	if a.SecretUUID == "" {
		return SecretByUsage(a.SecretUsage), nil
	}
	u, err := ParseUUID(a.SecretUUID)
	if err != nil {
		return SecretRef{}, Errorf(KindXMLError, "malformed secret uuid '%s'", a.SecretUUID)
	}
	return SecretByUUID(u), nil
}

// ConfigOpt is one <rbd:config_opts><rbd:option name value/> of an rbd pool,
// a Ceph client option passed through to the cluster connection.
type ConfigOpt struct {
	Name, Value string
}

// Adapter types of a scsi pool's <adapter>.
const (
	AdapterSCSIHost = "scsi_host"
	AdapterFCHost   = "fc_host"
)

// SourceAdapter is a scsi pool's <adapter>: a SCSI host given by name
// (hostN) or by its parent PCI device and unique_id, or a Fibre Channel vHBA
// (fc_host) given by its WWNN/WWPN pair and optionally its parent HBA.
type SourceAdapter struct {
	Type string // AdapterSCSIHost or AdapterFCHost
	// scsi_host
	Name       string      // hostN or scsi_hostN
	ParentAddr *PCIAddress // the parentaddr form, with UniqueID
	UniqueID   uint32
	// fc_host
	Parent          string // the parent HBA's scsi_hostN
	ParentWWNN      string
	ParentWWPN      string
	ParentFabricWWN string
	Managed         string // "", "yes", "no"
	WWNN, WWPN      string
}

// PCIAddress is a PCI device address (domain:bus:slot.function).
type PCIAddress struct {
	Domain, Bus, Slot, Function uint32
}

// PoolTarget is the <target> of a pool.
type PoolTarget struct {
	Path  string
	Perms Perms
}

// PoolDef is a storage pool definition.
type PoolDef struct {
	Type      PoolType
	Name      string
	UUID      UUID
	Source    PoolSource
	Target    PoolTarget
	MountOpts []string // <fs:mount_opts> options (fs, netfs)
	COW       string   // <features><cow state>: "", "yes", "no"
	// RBDConfigOpts are the <rbd:config_opts> of an rbd pool, in XML order.
	RBDConfigOpts []ConfigOpt
	// RefreshVolAllocation is <refresh><volume allocation=...>: "" (absent),
	// "default" or "capacity". It tells how a refresh measures a volume's
	// allocation on pool types where that is costly (rbd).
	RefreshVolAllocation string
}

// PoolHandle identifies a pool on the wire (remote_nonnull_storage_pool).
type PoolHandle struct {
	Name string
	UUID UUID
}

// Handle returns the wire handle of the definition.
func (d *PoolDef) Handle() PoolHandle { return PoolHandle{Name: d.Name, UUID: d.UUID} }

// PoolInfo is what virStoragePoolGetInfo returns.
type PoolInfo struct {
	State      PoolState
	Capacity   uint64
	Allocation uint64
	Available  uint64
}

// PoolStats are a pool's capacity figures as a refresh measures them.
type PoolStats struct {
	Capacity   uint64
	Allocation uint64
	Available  uint64
	// Thin marks a thin-provisioned pool, whose volumes' capacities may add up
	// to more than the pool holds: its XML then also shows Provisioned, the sum
	// of those capacities, next to the used figure (Allocation).
	Thin        bool
	Provisioned uint64
	// TargetPerms are the target directory's real mode and owner, which libvirt
	// shows in the live pool XML after a refresh; nil when not measured.
	TargetPerms *Perms
}

// Timestamps are a volume file's times.
type Timestamps struct {
	Atime, Mtime, Ctime, Btime time.Time
}

// VolTarget is the <target> of a volume.
type VolTarget struct {
	Path        string
	Format      string // raw, qcow2, ..., dir; "" = pool default
	Perms       Perms
	Timestamps  *Timestamps
	Compat      string // qcow2 compat level "0.10" / "1.1"
	ClusterSize uint64 // bytes, 0 = default
	// HasFeatures is true when a <features> element is given or read (libvirt
	// keeps a features set for every qcow2 v3 image, printed as <features/>
	// when empty); LazyRefcounts and ExtendedL2 imply it.
	HasFeatures   bool
	LazyRefcounts bool
	ExtendedL2    bool
	Nocow         bool
	Encryption    VolEncryption // Format "" = not encrypted
}

// VolEncryption is a volume's <encryption>: its format, the secret holding
// the passphrase, and for LUKS the cipher and IV generator asked for at
// creation (a refresh does not read them back, as libvirt's does not).
type VolEncryption struct {
	Format string // "default", "qcow", "luks", "luks2"; "" = not encrypted
	Engine string // "qemu", "librbd"; "" = the default
	// Secrets are the <secret type='passphrase'> elements. LUKS takes exactly
	// one; the XML allows any number, and the checks at use say so.
	Secrets []SecretRef
	Cipher  EncryptionCipher
	Ivgen   EncryptionIvgen
}

// EncryptionCipher is <cipher name size mode hash>; Name "" means none given.
type EncryptionCipher struct {
	Name string
	Size uint32
	Mode string
	Hash string
}

// EncryptionIvgen is <ivgen name hash>; Name "" means none given.
type EncryptionIvgen struct {
	Name string
	Hash string
}

// Encrypted reports whether the volume has an <encryption> element.
func (e VolEncryption) Encrypted() bool { return e.Format != "" }

// BackingStore is a volume's backing image.
type BackingStore struct {
	Path       string
	Format     string
	Perms      Perms
	Timestamps *Timestamps // output only, when the backing file could be stat'ed
}

// VolDef is a storage volume definition (what vol XML carries).
type VolDef struct {
	Name          string
	Key           string
	Type          VolType
	Capacity      uint64
	Allocation    uint64
	HasAllocation bool // <allocation> was given (otherwise it defaults to capacity)
	HasCapacity   bool // <capacity> was given (create-from may omit it)
	Physical      uint64
	Target        VolTarget
	Backing       *BackingStore
	SourceDevice  string   // logical/disk: the device holding the extents (output only)
	Extents       []Extent // output only
}

// VolHandle identifies a volume on the wire (remote_nonnull_storage_vol).
type VolHandle struct {
	Pool string
	Name string
	Key  string
}

// VolInfo is what virStorageVolGetInfo returns.
type VolInfo struct {
	Type       VolType
	Capacity   uint64
	Allocation uint64
}

// PoolEvent is a storage pool lifecycle event (virStoragePoolEventLifecycleType).
type PoolEvent int32

// Lifecycle events.
const (
	EventDefined PoolEvent = iota
	EventUndefined
	EventStarted
	EventStopped
	EventCreated
	EventDeleted
)

// Flags of the public storage API (libvirt-storage.h) that the service checks.
const (
	ListPoolsInactive    uint32 = 1 << 0
	ListPoolsActive      uint32 = 1 << 1
	ListPoolsPersistent  uint32 = 1 << 2
	ListPoolsTransient   uint32 = 1 << 3
	ListPoolsAutostart   uint32 = 1 << 4
	ListPoolsNoAutostart uint32 = 1 << 5
	ListPoolsTypeMask    uint32 = ((1 << 14) - 1) << 6

	PoolBuildNew         uint32 = 0
	PoolBuildRepair      uint32 = 1
	PoolBuildResize      uint32 = 2
	PoolBuildNoOverwrite uint32 = 4
	PoolBuildOverwrite   uint32 = 8

	PoolCreateWithBuild            uint32 = 1
	PoolCreateWithBuildOverwrite   uint32 = 2
	PoolCreateWithBuildNoOverwrite uint32 = 4

	PoolDefineValidate uint32 = 1
	PoolXMLInactive    uint32 = 1

	VolCreatePreallocMetadata uint32 = 1
	VolCreateReflink          uint32 = 2
	VolCreateValidate         uint32 = 4

	VolGetPhysical uint32 = 1

	VolResizeAllocate uint32 = 1
	VolResizeDelta    uint32 = 2
	VolResizeShrink   uint32 = 4

	StreamSparse uint32 = 1
)

// WipeAlgorithm is virStorageVolWipeAlgorithm.
type WipeAlgorithm uint32

// Wipe algorithms.
const (
	WipeZero WipeAlgorithm = iota
	WipeNNSA
	WipeDOD
	WipeBSI
	WipeGutmann
	WipeSchneier
	WipePfitzner7
	WipePfitzner33
	WipeRandom
	WipeTrim
	wipeEnd
)

var wipeScrubNames = [...]string{"zero", "nnsa", "dod", "bsi", "gutmann", "schneier", "pfitzner7", "pfitzner33", "random", "trim"}

// ScrubName returns the scrub(1) pattern name for the algorithm.
func (a WipeAlgorithm) ScrubName() string {
	if a >= wipeEnd {
		return ""
	}
	return wipeScrubNames[a]
}

// Valid reports whether the algorithm is one libvirt defines.
func (a WipeAlgorithm) Valid() bool { return a < wipeEnd }
