package domain

// Flag masks the storage driver accepts per procedure (docs/protocol.md §e); any
// other bit is refused with virCheckFlags' error naming the driver function.
const (
	MaskListAllPools   uint32 = ListPoolsInactive | ListPoolsActive | ListPoolsPersistent | ListPoolsTransient | ListPoolsAutostart | ListPoolsNoAutostart | ListPoolsTypeMask
	MaskPoolCreate     uint32 = PoolCreateWithBuild | PoolCreateWithBuildOverwrite | PoolCreateWithBuildNoOverwrite
	MaskPoolDefine     uint32 = PoolDefineValidate
	MaskPoolXMLDesc    uint32 = PoolXMLInactive
	MaskPoolRefresh    uint32 = 0
	MaskListAllVolumes uint32 = 0
	MaskVolCreate      uint32 = VolCreatePreallocMetadata | VolCreateValidate
	MaskVolCreateFrom  uint32 = VolCreatePreallocMetadata | VolCreateReflink | VolCreateValidate
	MaskVolXMLDesc     uint32 = 0
	MaskVolGetInfo     uint32 = VolGetPhysical
	MaskVolWipe        uint32 = 0
	MaskVolResize      uint32 = VolResizeAllocate | VolResizeDelta | VolResizeShrink
	MaskVolStream      uint32 = StreamSparse
	MaskPoolCaps       uint32 = 0
)

// CheckFlags is virCheckFlags: bits outside mask give libvirt's error naming fn,
// the storage driver function (storagePoolCreate, storageVolCreateXML, ...).
func CheckFlags(flags, mask uint32, fn string) error {
	if extra := flags &^ mask; extra != 0 {
		return ErrUnsupportedFlags(extra, fn)
	}
	return nil
}

// CheckBuildFlags refuses the two overwrite flags together, as every libvirt
// backend that honours them does.
func CheckBuildFlags(flags uint32) error {
	if flags&PoolBuildOverwrite != 0 && flags&PoolBuildNoOverwrite != 0 {
		return ErrExclusiveFlags("VIR_STORAGE_POOL_BUILD_OVERWRITE", "VIR_STORAGE_POOL_BUILD_NO_OVERWRITE")
	}
	return nil
}

// CreateBuildFlags turns the WITH_BUILD flags of pool create/start into whether
// to build first and with which build flags. As in libvirt 9.0 (measured), both
// overwrite flags together are not an error: OVERWRITE wins.
func CreateBuildFlags(flags uint32) (build bool, buildFlags uint32, err error) {
	switch {
	case flags&PoolCreateWithBuildOverwrite != 0:
		buildFlags = PoolBuildOverwrite
	case flags&PoolCreateWithBuildNoOverwrite != 0:
		buildFlags = PoolBuildNoOverwrite
	}
	return flags&MaskPoolCreate != 0, buildFlags, nil
}

// PoolListAttrs are the properties virConnectListAllStoragePools filters on.
type PoolListAttrs struct {
	Type       PoolType
	Active     bool
	Persistent bool
	Autostart  bool
}

// MatchListFlags reports whether a pool passes the LIST_ALL filter: within a group
// (state, persistence, autostart, type) the bits are alternatives; groups combine,
// and an empty group does not filter.
func MatchListFlags(flags uint32, a PoolListAttrs) bool {
	group := func(yes, no uint32, v bool) bool {
		if flags&(yes|no) == 0 {
			return true
		}
		return (v && flags&yes != 0) || (!v && flags&no != 0)
	}
	if !group(ListPoolsActive, ListPoolsInactive, a.Active) ||
		!group(ListPoolsPersistent, ListPoolsTransient, a.Persistent) ||
		!group(ListPoolsAutostart, ListPoolsNoAutostart, a.Autostart) {
		return false
	}
	if flags&ListPoolsTypeMask != 0 && flags&a.Type.ListFlag() == 0 {
		return false
	}
	return true
}
