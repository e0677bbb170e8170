// Package ports holds the interfaces between the domain service and the world:
// the driving port (StorageAPI, called by the RPC adapter) and the driven ports
// (PoolBackend per pool type, CommandRunner, XMLCodec, StateStore, EventSink, Clock).
// It holds interfaces and the small value types they exchange, nothing else.
package ports

import (
	"context"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

//go:generate go tool mockgen -typed -destination mocks/ports_mock.go -package mocks . StorageAPI,PoolBackend,CommandRunner,XMLCodec,StateStore,EventSink,SecretStore

// StorageAPI is the driving port: every storage procedure of the remote program,
// in domain terms. Flags are passed through unchanged; the service checks them with
// libvirt's masks and error texts. Read-only enforcement happens before this port.
type StorageAPI interface {
	// Connect-level storage queries.
	NumOfPools(ctx context.Context, active bool) (int, error)
	ListPoolNames(ctx context.Context, active bool, max int) ([]string, error)
	ListAllPools(ctx context.Context, flags uint32) ([]domain.PoolHandle, error)
	FindPoolSources(ctx context.Context, poolType string, srcSpec string, flags uint32) (string, error)
	PoolCapabilities(ctx context.Context, flags uint32) (string, error)
	// Capabilities is the CONNECT_GET_CAPABILITIES XML of the storage driver.
	Capabilities(ctx context.Context) (string, error)

	// Pool lookups.
	PoolLookupByName(ctx context.Context, name string) (domain.PoolHandle, error)
	PoolLookupByUUID(ctx context.Context, uuid domain.UUID) (domain.PoolHandle, error)
	PoolLookupByVolume(ctx context.Context, vol domain.VolHandle) (domain.PoolHandle, error)
	PoolLookupByTargetPath(ctx context.Context, path string) (domain.PoolHandle, error)

	// Pool lifecycle. Pool handles are resolved by UUID, as libvirt does.
	PoolCreateXML(ctx context.Context, xml string, flags uint32) (domain.PoolHandle, error)
	PoolDefineXML(ctx context.Context, xml string, flags uint32) (domain.PoolHandle, error)
	PoolCreate(ctx context.Context, pool domain.PoolHandle, flags uint32) error
	PoolBuild(ctx context.Context, pool domain.PoolHandle, flags uint32) error
	PoolDestroy(ctx context.Context, pool domain.PoolHandle) error
	PoolDelete(ctx context.Context, pool domain.PoolHandle, flags uint32) error
	PoolUndefine(ctx context.Context, pool domain.PoolHandle) error
	PoolRefresh(ctx context.Context, pool domain.PoolHandle, flags uint32) error

	// Pool queries.
	PoolGetInfo(ctx context.Context, pool domain.PoolHandle) (domain.PoolInfo, error)
	PoolGetXMLDesc(ctx context.Context, pool domain.PoolHandle, flags uint32) (string, error)
	PoolGetAutostart(ctx context.Context, pool domain.PoolHandle) (bool, error)
	PoolSetAutostart(ctx context.Context, pool domain.PoolHandle, autostart bool) error
	PoolIsActive(ctx context.Context, pool domain.PoolHandle) (bool, error)
	PoolIsPersistent(ctx context.Context, pool domain.PoolHandle) (bool, error)
	PoolNumOfVolumes(ctx context.Context, pool domain.PoolHandle) (int, error)
	PoolListVolumes(ctx context.Context, pool domain.PoolHandle, max int) ([]string, error)
	PoolListAllVolumes(ctx context.Context, pool domain.PoolHandle, flags uint32) ([]domain.VolHandle, error)

	// Volumes. Volume handles are resolved by pool name + volume name.
	VolLookupByName(ctx context.Context, pool domain.PoolHandle, name string) (domain.VolHandle, error)
	VolLookupByKey(ctx context.Context, key string) (domain.VolHandle, error)
	VolLookupByPath(ctx context.Context, path string) (domain.VolHandle, error)
	VolCreateXML(ctx context.Context, pool domain.PoolHandle, xml string, flags uint32) (domain.VolHandle, error)
	VolCreateXMLFrom(ctx context.Context, pool domain.PoolHandle, xml string, src domain.VolHandle, flags uint32) (domain.VolHandle, error)
	VolDelete(ctx context.Context, vol domain.VolHandle, flags uint32) error
	VolGetInfo(ctx context.Context, vol domain.VolHandle, flags uint32) (domain.VolInfo, error)
	VolGetXMLDesc(ctx context.Context, vol domain.VolHandle, flags uint32) (string, error)
	VolGetPath(ctx context.Context, vol domain.VolHandle) (string, error)
	VolWipe(ctx context.Context, vol domain.VolHandle, algorithm domain.WipeAlgorithm, flags uint32) error
	VolResize(ctx context.Context, vol domain.VolHandle, capacity uint64, flags uint32) error
	// VolUpload validates and opens an upload; the caller feeds the returned writer
	// with the stream's data and calls Finish or Abort exactly once.
	VolUpload(ctx context.Context, vol domain.VolHandle, offset, length uint64, flags uint32) (VolumeWriter, error)
	// VolDownload validates and opens a download; the caller drains the reader and
	// calls Close exactly once.
	VolDownload(ctx context.Context, vol domain.VolHandle, offset, length uint64, flags uint32) (VolumeReader, error)
}

// VolumeWriter receives an upload stream's data in order.
type VolumeWriter interface {
	// Write stores the next data bytes.
	Write(p []byte) (int, error)
	// Hole skips length bytes, which read back as zeros afterwards (sparse streams).
	Hole(length int64) error
	// Finish flushes and closes after the client finished the stream successfully.
	Finish(ctx context.Context) error
	// Abort discards the upload after a client abort or hang-up; data written so
	// far stays (as in libvirt) but the volume is released.
	Abort()
}

// VolumeReader produces a download stream's data in order.
type VolumeReader interface {
	// Next fills buf with the next data and returns n > 0, or returns a hole of
	// holeLen > 0 bytes (only when the download was opened sparse), or io.EOF at the end.
	Next(buf []byte) (n int, holeLen int64, err error)
	// Close releases the volume.
	Close() error
}

// VolumeSectionReader is a VolumeReader whose data lies in a file or device
// that the transport may send straight from the page cache (sendfile), without
// reading it into a buffer first: one copy of the data fewer per download.
type VolumeSectionReader interface {
	VolumeReader
	// NextSection is Next without the read: it returns where the next
	// piece lies (at most max bytes of data, then any hole), or io.EOF, and
	// moves past it. A file that shrinks in between gives fewer bytes than
	// the section's Len, and the transport ends the stream there, as Next
	// does.
	NextSection(max int) (FileSection, error)
	// SectionError is the error to report when reading a section's file
	// failed with err: Next's own error for a failed read.
	SectionError(err error) error
}

// FileSection is a piece of a download as it lies in the volume's file:
// Len bytes of data at Offset of the open file FD, followed by a hole of
// Hole bytes; either may be zero.
type FileSection struct {
	// FD is the descriptor of the file the reader holds open until its
	// Close; the transport dups it for as long as it needs it.
	FD     int
	Offset int64
	Len    int
	Hole   int64
}

// Size is how far the section moves the stream: its data and its hole.
func (s FileSection) Size() int64 { return int64(s.Len) + s.Hole }

// EventSink is where the service publishes storage pool events; adapters/rpc
// delivers them to the registered callbacks of every connection.
type EventSink interface {
	PoolLifecycle(pool domain.PoolHandle, event domain.PoolEvent, detail int32)
	PoolRefreshed(pool domain.PoolHandle)
}
