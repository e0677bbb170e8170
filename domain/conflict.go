package domain

import "path"

// CheckPoolDuplicate applies libvirt's identity rules for a definition against the
// pools that exist: a known UUID must keep its name, and a known name must keep its
// UUID (redefining requires the same UUID).
func CheckPoolDuplicate(def *PoolDef, existing []*PoolDef) error {
	for _, o := range existing {
		if o.UUID == def.UUID && o.Name != def.Name {
			return Errorf(KindOperationFailed, "pool '%s' is already defined with uuid %s", o.Name, o.UUID)
		}
	}
	for _, o := range existing {
		if o.Name == def.Name && o.UUID != def.UUID {
			return Errorf(KindOperationFailed, "pool '%s' already exists with uuid %s", def.Name, o.UUID)
		}
	}
	return nil
}

// CheckSourceConflict refuses a definition whose storage another pool of the same
// type already uses (libvirt's virStoragePoolObjSourceFindDuplicate). The pool being
// redefined (same name) is skipped. Paths are compared after cleaning, so "dir/" and
// "//dir" match "/dir".
func CheckSourceConflict(def *PoolDef, existing []*PoolDef) error {
	for _, o := range existing {
		if o.Name == def.Name || o.Type != def.Type {
			continue
		}
		if sourcesConflict(def, o) {
			return Errorf(KindOperationFailed, "Storage source conflict with pool: '%s'", o.Name)
		}
	}
	return nil
}

// CleanPath normalises a path the way libvirt's virFileSanitizePath does for
// comparisons: repeated and trailing slashes go; ".." is kept as given.
func CleanPath(p string) string {
	if p == "" {
		return ""
	}
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && len(out) > 0 && out[len(out)-1] == '/' {
			continue
		}
		out = append(out, p[i])
	}
	if len(out) > 1 && out[len(out)-1] == '/' {
		out = out[:len(out)-1]
	}
	return string(out)
}

func samePath(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return path.Clean(CleanPath(a)) == path.Clean(CleanPath(b))
}

func sourcesConflict(a, b *PoolDef) bool {
	switch a.Type {
	case PoolDir, PoolVstorage:
		return samePath(a.Target.Path, b.Target.Path)
	case PoolFS:
		return samePath(a.Target.Path, b.Target.Path) || shareDevice(a, b)
	case PoolNetFS:
		return samePath(a.Target.Path, b.Target.Path) || (sameHost(a, b) && samePath(a.Source.Dir, b.Source.Dir))
	case PoolGluster:
		return sameHost(a, b) && a.Source.Name == b.Source.Name && CleanPath(a.Source.Dir) == CleanPath(b.Source.Dir)
	case PoolLogical:
		return shareDevice(a, b) || VGName(a) == VGName(b)
	case PoolDisk, PoolZFS:
		return shareDevice(a, b)
	case PoolISCSI:
		// libvirt compares the target and the initiator, not the portal: two
		// pools may log in to one target as two initiators.
		return shareDevice(a, b) && a.Source.Initiator == b.Source.Initiator
	case PoolISCSIDirect:
		return sameHost(a, b) && shareDevice(a, b)
	case PoolSCSI:
		return sameAdapter(a.Source.Adapter, b.Source.Adapter)
	case PoolRBD:
		return sameHost(a, b) && a.Source.Name == b.Source.Name
	}
	return false
}

// VGName is a logical pool's volume group: <source><name>, defaulting to the pool name.
func VGName(d *PoolDef) string {
	if d.Source.Name != "" {
		return d.Source.Name
	}
	return d.Name
}

func shareDevice(a, b *PoolDef) bool {
	for _, da := range a.Source.Devices {
		for _, db := range b.Source.Devices {
			if da.Path != "" && CleanPath(da.Path) == CleanPath(db.Path) {
				return true
			}
		}
	}
	return false
}

func sameHost(a, b *PoolDef) bool {
	if len(a.Source.Hosts) == 0 || len(b.Source.Hosts) == 0 {
		return false
	}
	ha, hb := a.Source.Hosts[0], b.Source.Hosts[0]
	return ha.Name == hb.Name && (ha.Port == hb.Port || ha.Port == 0 || hb.Port == 0)
}

// sameAdapter is libvirt's duplicate test of scsi pools' adapters: two vHBAs
// of one WWNN/WWPN pair, two SCSI hosts of one number (host5 and
// scsi_host5 alike) or of one parent PCI address and unique_id. A host
// given by name and one given by address would need sysfs to compare, and
// are not.
func sameAdapter(a, b *SourceAdapter) bool {
	if a == nil || b == nil || a.Type != b.Type {
		return false
	}
	if a.Type == AdapterFCHost {
		return a.WWNN == b.WWNN && a.WWPN == b.WWPN
	}
	if a.ParentAddr != nil || b.ParentAddr != nil {
		return a.ParentAddr != nil && b.ParentAddr != nil && *a.ParentAddr == *b.ParentAddr && a.UniqueID == b.UniqueID
	}
	na, oka := SCSIHostNumber(a.Name)
	nb, okb := SCSIHostNumber(b.Name)
	return oka && okb && na == nb
}

// SCSIHostNumber reads the N of an adapter name "hostN" or "scsi_hostN".
func SCSIHostNumber(name string) (uint32, bool) {
	rest := name
	if len(rest) > 5 && rest[:5] == "scsi_" {
		rest = rest[5:]
	}
	if len(rest) < 5 || rest[:4] != "host" {
		return 0, false
	}
	var n uint64
	for _, c := range rest[4:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > 1<<32-1 {
			return 0, false
		}
	}
	return uint32(n), true
}
