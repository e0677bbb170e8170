package domain

import "strings"

// ValidatePoolName applies libvirt's pool name rules. libvirt rejects '/' with an XML
// error at parse time and newlines at define; we also reject the other control
// characters and the names "." and "..", which would make the config file name
// escape or alias the storage directory.
func ValidatePoolName(name string) error {
	switch {
	case name == "":
		return Errorf(KindXMLError, "missing pool source name element")
	case strings.ContainsRune(name, '/'):
		return Errorf(KindXMLError, "name %s cannot contain '/'", name)
	case name == "." || name == "..":
		return Errorf(KindXMLError, "name %s is not allowed for a storage pool", name)
	case strings.ContainsRune(name, '\n'):
		// libvirt's own check and text (virXMLCheckIllegalChars), measured.
		return &Error{Kind: KindXMLDetail, Domain: FromXML, Detail: "invalid char in name: \n"}
	}
	if c, ok := firstControl(name); ok {
		return Errorf(KindXMLError, "name %q cannot contain control character 0x%02x", name, c)
	}
	return nil
}

// ValidateVolName applies the volume name rules of the file backends: no '/', which
// libvirt reports as an invalid operation, and (beyond libvirt) no control
// characters, which a refresh would skip. "." and ".." are the backends' to
// refuse, in their own words (a file pool finds the path taken, as libvirt).
func ValidateVolName(name string) error {
	switch {
	case name == "":
		return Errorf(KindXMLError, "missing volume name element")
	case strings.ContainsRune(name, '/'):
		return Errorf(KindOperationInvalid, "volume name '%s' cannot contain '/'", name)
	}
	if c, ok := firstControl(name); ok {
		return Errorf(KindOperationInvalid, "volume name %q cannot contain control character 0x%02x", name, c)
	}
	return nil
}

func firstControl(s string) (rune, bool) {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return r, true
		}
	}
	return 0, false
}

// libvirtTypeIndex is virStoragePoolType's numbering, which differs from ours
// (and from the list-filter bits) because iscsi-direct sits after iscsi there.
var libvirtTypeIndex = [...]int{
	PoolDir: 0, PoolFS: 1, PoolNetFS: 2, PoolLogical: 3, PoolDisk: 4, PoolISCSI: 5,
	PoolISCSIDirect: 6, PoolSCSI: 7, PoolMpath: 8, PoolRBD: 9, PoolSheepdog: 10,
	PoolGluster: 11, PoolZFS: 12, PoolVstorage: 13,
}

// LibvirtIndex returns the pool type's value in libvirt's virStoragePoolType enum,
// the number libvirt prints in "missing backend for pool type N (name)".
func (t PoolType) LibvirtIndex() int {
	if t < 0 || t >= poolTypeEnd {
		return int(t)
	}
	return libvirtTypeIndex[t]
}

// ErrMissingBackend is libvirt's error for a pool type this daemon does not serve.
func ErrMissingBackend(t PoolType) *Error {
	return Errorf(KindInternal, "missing backend for pool type %d (%s)", t.LibvirtIndex(), t)
}

// ErrPoolStarting is libvirt's error for an operation on a pool that is being
// started or built.
func ErrPoolStarting(name string) *Error {
	return Errorf(KindOperationInvalid, "storage pool '%s' is starting up", name)
}

// ErrPoolAsyncJobs is libvirt's error for stopping or deleting a pool while volume
// jobs run on it.
func ErrPoolAsyncJobs(name string) *Error {
	return Errorf(KindInternal, "pool '%s' has asynchronous jobs running.", name)
}

// ErrVolNotFoundName is libvirt's error for an unknown volume name in a pool.
func ErrVolNotFoundName(name string) *Error {
	return Errorf(KindNoStorageVol, "no storage vol with matching name '%s'", name)
}

// ErrVolNotFoundKey is libvirt's error for an unknown volume key.
func ErrVolNotFoundKey(key string) *Error {
	return Errorf(KindNoStorageVol, "no storage vol with matching key %s", key)
}

// ErrVolNotFoundPath is libvirt's error for an unknown volume path.
func ErrVolNotFoundPath(path string) *Error {
	return Errorf(KindNoStorageVol, "no storage vol with matching path '%s'", path)
}

// ErrVolExists is libvirt's error for creating a volume whose name is taken.
func ErrVolExists(name string) *Error {
	return Errorf(KindStorageVolExist, "'%s'", name)
}

// ErrVolNameInUse is libvirt's error for cloning onto a volume name that is taken.
func ErrVolNameInUse(name string) *Error {
	return Errorf(KindInternal, "storage volume name '%s' already in use.", name)
}

// ErrNoConfigFile is libvirt's error for autostart on a transient pool.
func ErrNoConfigFile() *Error {
	return Errorf(KindInternal, "pool has no config file")
}

// ErrExclusiveFlags is libvirt's VIR_EXCLUSIVE_FLAGS error.
func ErrExclusiveFlags(a, b string) *Error {
	e := Errorf(KindInvalidArg, "Flags '%s' and '%s' are mutually exclusive", a, b)
	e.Bare = true // libvirt reports it without the "invalid argument: " prefix
	return e
}

// ErrNoSourceDiscovery is libvirt's error for find-storage-pool-sources on a type
// that cannot discover sources.
func ErrNoSourceDiscovery(poolType string) *Error {
	return Errorf(KindNoSupport, "pool type '%s' does not support source discovery", poolType)
}

// ErrUnknownPoolType is libvirt's error for a type name it does not know.
func ErrUnknownPoolType(poolType string) *Error {
	return Errorf(KindInternal, "unknown storage pool type %s", poolType)
}

// ErrWipeAlgorithm is libvirt's error for an algorithm number out of range.
func ErrWipeAlgorithm(a WipeAlgorithm) *Error {
	return Errorf(KindInvalidArg, "wiping algorithm %d not supported", uint32(a))
}

// NotEnoughSpaceError is our admission-control failure: the pool's available bytes
// (minus what concurrent creates have reserved) cannot hold the request.
func NotEnoughSpaceError(pool, vol string, need, avail uint64) *Error {
	return Errorf(KindOperationFailed,
		"Not enough space left in storage pool '%s' for volume '%s' (needs %d bytes, %d available)",
		pool, vol, need, avail)
}
