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
	case PoolISCSI, PoolISCSIDirect:
		return sameHost(a, b) && shareDevice(a, b)
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
