// Package backendtest is the conformance suite of ports.PoolBackend, in the
// shape of go-cloud's blob/drivertest: one suite, a Harness per backend, run
// by every backend, the in-memory fake (testkit.MemoryBackend) included, so
// that the fake is proven to behave like the real ones and a new backend is
// done when the suite passes.
//
// # The contract
//
// The service (domain/service) holds the locks, the state machine and the
// capacity ledger; a backend only touches the system. What the service relies
// on, and the suite checks, is:
//
//   - Errors. Every error a backend returns is a *domain.Error, whose Kind the
//     RPC layer maps to libvirt's code; a bare error would reach the client as
//     an internal error. The one exception is a call cut short by its context:
//     its error wraps the context's (errors.Is(err, context.Canceled)), so
//     the service can tell a client that went away from a failure. Flags a
//     backend does not know are refused with KindInvalidArg (libvirt's
//     virCheckFlags), and what the type cannot do at all with KindNoSupport
//     (or the libvirt error for that case, of that kind).
//   - Pool lifecycle. ValidatePool is idempotent. Where the type has a build
//     step, a pool that was never built does not start and does not refresh;
//     BuildPool makes its storage (with Capabilities.BuildFlags), refusing
//     unknown flags and the two overwrite flags together. StartPool and
//     StopPool may each be called again on a pool already in that state (the
//     daemon restarts, autostart, a failed start's cleanup): both succeed.
//     CheckPool, asked at daemon start, reports the pool active as
//     Capabilities.Presence says. DeletePool removes what BuildPool made, after
//     which the pool neither starts nor refreshes; storage that still holds
//     volumes is refused unless Capabilities.DeleteNonEmpty.
//   - Refresh. RefreshPool lists what is on the system, not what the backend
//     made: a volume made or removed behind its back (Harness.AddVolume,
//     RemoveVolume) shows or vanishes at the next refresh. Every listed volume
//     has a name, a key and a path, unique in the pool, and RefreshVol of it
//     gives the same key and figures. The figures hold together: allocation
//     never exceeds capacity, and what is available never exceeds the rest.
//     RefreshVol of a vanished volume fails with KindNoStorageVol (the service
//     then forgets it) or KindSystem (libvirt's "cannot stat" for files).
//   - Volumes. PrepareVol fills the path and type without touching the system.
//     BuildVol makes the volume with at least its capacity (rounded up to
//     Capabilities.Granularity) and the allocation the type gives it
//     (Capabilities.Allocation); a name already taken on the system is refused
//     without harm to the volume there. A BuildVol or BuildVolFrom that fails,
//     for lack of space or because its context was cancelled, leaves no volume
//     behind: the service forgets the volume and would never delete it.
//     DeleteVol of a volume already gone succeeds or fails with
//     KindNoStorageVol. ResizeVol grows (and with VolResizeShrink shrinks)
//     the capacity and keeps the data; with VolResizeAllocate it allocates
//     the new size, and when the pool cannot hold it, fails and leaves the
//     volume as it was. BuildVolFrom copies the data. WipeVol zeroes (for
//     WipeZero), refuses WipeTrim with KindArgumentUnsupported and unknown
//     flags with KindInvalidArg.
//   - Streams. A download returns the volume's bytes from offset for length
//     (0: to the end), a sparse one (StreamSparse) the same bytes as data and
//     holes. An upload writes at offset; what was written stays even when the
//     upload is aborted (as in libvirt), and nothing is written past the
//     volume's end: such a write fails.
//   - Accounting. In a pool of its own (Capabilities.Isolated), a volume
//     created fully allocated raises the pool's allocation and lowers what is
//     available by at least its size, and a volume larger than the whole pool
//     cannot be created.
//   - Concurrency. The service runs volume jobs and refreshes of one pool at
//     the same time (it holds no lock across a backend call): they must not
//     race (run the suite with -race).
//   - Cancellation. A cancelled context makes a long call (a wipe, a clone
//     of a volume holding data) return with the context's error; any other
//     call either completes or fails so, and in both cases leaves nothing
//     half made.
//
// # Capabilities
//
// A type whose volumes are named by the system (disk: a partition is called
// after its device and number, vdb1 or loop0p2, as in libvirt) has a harness
// that is a VolumeNamer: the suite asks it for each volume's name, and makes
// such volumes one after the other.
//
// A harness declares what its type can do (Capabilities); the suite checks
// that what is declared missing is refused with KindNoSupport rather than
// skipping it, and skips a test only for a reason the harness states
// (Capabilities.NoData: this environment cannot reach the volumes' data), with
// that reason in the test output.
//
// # Adding a backend
//
// Write a Harness for it in internal/backendtest/harness (one file, a
// constructor that takes what the environment provides: devices, a host, a
// runner, so that the storage lab can build one over its real devices) and a
// conformance_test.go in the backend's package:
//
//	func TestConformance(t *testing.T) {
//		backendtest.RunConformanceTests(t, harness.Disk(harness.PartitionedLoopDevices(64<<20)))
//	}
//
// Fill Capabilities from what libvirt's backend does (which operations its
// virStorageBackend has), run the suite, and fix the backend until it passes.
// A host harness must stay fast (well under 30 seconds) and skip, saying why,
// where it needs root or tools the machine lacks. The suite never holds two
// pools of one harness at the same time, and removes each pool at the end of
// its test, so a lab harness over a single device works.
package backendtest
