package ports

import (
	"context"
	"io"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// PoolBackend is the driven port one pool type implements (adapters/dir, fs,
// netfs, logical, mpath). The service holds the locks and the ledger; a backend only
// touches the system. Operations a type cannot do return a domain error of kind
// KindNoSupport (or libvirt's exact error for that case).
type PoolBackend interface {
	// Type is the pool type this backend serves.
	Type() domain.PoolType
	// DefaultVolFormat is the volume format used when the XML gives none
	// ("raw" for file pools, "" for block pools).
	DefaultVolFormat() string
	// ValidatePool applies the backend's definition rules (required source
	// elements, defaults such as the VG name) at define time.
	ValidatePool(def *domain.PoolDef) error
	// CheckPool reports whether the pool is already active on the system (used at
	// daemon start to bring back running pools).
	CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error)
	BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error
	StartPool(ctx context.Context, def *domain.PoolDef) error
	StopPool(ctx context.Context, def *domain.PoolDef) error
	DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error
	// RefreshPool measures the pool and lists its volumes with their figures.
	RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error)
	// FindPoolSources discovers candidate sources (virConnectFindStoragePoolSources);
	// it refuses unsupported flags before it reads spec, which may then be nil;
	// spec holds what the caller's srcSpec gave (host, etc.).
	FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error)

	// PrepareVol validates a new volume definition against the pool and fills the
	// derived fields (key, target path, type, default format) without touching disk.
	PrepareVol(pool *domain.PoolDef, vol *domain.VolDef) error
	// BuildVol creates the volume on disk.
	BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error
	// BuildVolFrom creates vol as a copy of src (which may live in another pool).
	BuildVolFrom(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, srcPool *domain.PoolDef, src *domain.VolDef, flags uint32) error
	// RefreshVol re-reads one volume's figures and format from disk.
	RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error
	DeleteVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error
	ResizeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, capacity uint64, flags uint32) error
	WipeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, algorithm domain.WipeAlgorithm, flags uint32) error
	UploadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (VolumeWriter, error)
	DownloadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (VolumeReader, error)
}

// LayoutSharingBackend is implemented by a PoolBackend whose volumes are cut
// out of one shared layout, a partition table: creating or deleting one moves
// the pool's free extents and figures by more than the volume's allocation,
// and deleting one may rename others (logical partitions are renumbered). When
// VolumesShareLayout is true the service re-reads the pool after each such
// change, as libvirt's disk backend does.
type LayoutSharingBackend interface {
	VolumesShareLayout() bool
}

// Command is one external program invocation. Argv is built by pure functions in
// the adapters so that it can be checked in golden tests.
type Command struct {
	Path  string   // program name, found through PATH
	Args  []string // arguments, without the program name
	Stdin []byte
	Env   []string // extra environment (LC_ALL=C is always set)
	// Cred, when set, runs the program as another user: libvirt runs qemu-img
	// as the volume's owner on netfs pools, where an NFS server squashing root
	// would refuse the daemon. nil runs it as the daemon.
	Cred *Credential
	// Umask, when non-zero, is the program's umask, so that a file it creates
	// is never more open than asked; zero leaves the daemon's (libvirt's
	// virCommandSetUmask takes 0 the same way).
	Umask uint32
	// StdinStream and StdoutStream, when set, are the command's stdin and
	// stdout themselves, for data too large to hold in Stdin or in Run's
	// result (an upload piped into rbd import-diff, a download out of rbd
	// export-diff). An *os.File (a pipe) is handed to the child as is. With
	// StdoutStream set, Run returns no output.
	StdinStream  io.Reader
	StdoutStream io.Writer
}

// Credential is the identity a command runs with instead of the daemon's.
type Credential struct {
	UID, GID uint32
	// Groups are the supplementary groups; empty leaves none.
	Groups []uint32
}

// CommandRunner runs external commands. The one real implementation is
// adapters/osexec; tests use a scripted fake. Its failures are the contract
// of command.go: a program that ran and failed is an *ExitError, one that
// is missing is ErrCommandNotFound; callers test for those and never for
// the runner's own types.
type CommandRunner interface {
	// Run runs cmd, bound to ctx, and returns its stdout. A non-zero exit
	// returns an *ExitError with the exit status and stderr (and the stdout
	// read so far); a program that cannot be found returns an error that is
	// ErrCommandNotFound.
	Run(ctx context.Context, cmd Command) ([]byte, error)
}

// XMLCodec parses and formats pool and volume XML (adapters/xmldef).
type XMLCodec interface {
	// ParsePool parses pool XML with libvirt's rules and error texts.
	ParsePool(xml string, flags uint32) (*domain.PoolDef, error)
	// ValidatePool checks pool XML against libvirt's RelaxNG schema, for
	// domain.PoolDefineValidate, after the parse and root element checks
	// ParsePool makes (which fail first, with their own errors); a document
	// the schema refuses gives libvirt's VIR_ERR_XML_INVALID_SCHEMA error.
	ValidatePool(ctx context.Context, xml string) error
	// ValidateVol does the same for volume XML (domain.VolCreateValidate).
	ValidateVol(ctx context.Context, xml string) error
	// FormatPool formats a pool; stats nil means the inactive form (figures 0).
	FormatPool(def *domain.PoolDef, stats *domain.PoolStats) (string, error)
	// ParseVol parses volume XML for a pool of the given type; the schema
	// check of domain.VolCreateValidate is ValidateVol's.
	ParseVol(xml string, pool *domain.PoolDef, flags uint32) (*domain.VolDef, error)
	// FormatVol formats a volume as virStorageVolGetXMLDesc shows it.
	FormatVol(pool *domain.PoolDef, vol *domain.VolDef) (string, error)
	// FormatPoolStatus wraps a pool in libvirt's <poolstate> status document.
	FormatPoolStatus(def *domain.PoolDef, stats *domain.PoolStats) (string, error)
	// ParsePoolStatus reads a <poolstate> status document.
	ParsePoolStatus(xml string) (*domain.PoolDef, error)
	// FormatPoolCapabilities answers virConnectGetStoragePoolCapabilities for the
	// pool types served, each with the formats its backend supports.
	FormatPoolCapabilities(types []domain.PoolType) (string, error)
	// FormatCapabilities answers virConnectGetCapabilities of the storage driver.
	FormatCapabilities(types []domain.PoolType) (string, error)
	// FormatPoolSources formats virConnectFindStoragePoolSources' <sources> answer.
	FormatPoolSources(poolType domain.PoolType, sources []domain.PoolSource) (string, error)
	// ParsePoolSource parses the srcSpec argument of FindStoragePoolSources
	// (a <source> element); an empty string gives an empty source.
	ParsePoolSource(poolType domain.PoolType, xml string) (*domain.PoolSource, error)
}

// StoredPool is one pool config file found at start.
type StoredPool struct {
	Name      string
	XML       string
	Autostart bool
}

// StateStore persists pool configs, autostart links and runtime status in
// libvirt's layout. Every write is atomic.
type StateStore interface {
	LoadConfigs() ([]StoredPool, error)
	SaveConfig(name string, xml string) error
	DeleteConfig(name string) error
	SetAutostart(name string, autostart bool) error
	LoadStatus() ([]StoredPool, error)
	SaveStatus(name string, xml string) error
	DeleteStatus(name string) error
}
