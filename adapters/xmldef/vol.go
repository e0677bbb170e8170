package xmldef

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

var volTypes = map[string]domain.VolType{
	"file": domain.VolFile, "block": domain.VolBlock, "dir": domain.VolDir,
	"network": domain.VolNetwork, "netdir": domain.VolNetDir, "ploop": domain.VolPloop,
}

// encryptionFormats are virStorageEncryptionFormat's names.
var encryptionFormats = []string{"default", "qcow", "luks", "luks2"}

// volFeatures are virStorageFileFeature's names, in libvirt's order.
var volFeatures = []string{"lazy_refcounts", "extended_l2"}

// ParseVol parses volume XML for a pool as virStorageVolDefParseString does.
// A missing <capacity> is not an error here: HasCapacity stays false, and the
// caller decides (create needs it: "missing capacity element"; create-from
// does not). An absent <target><format> stays "" for the backend to fill; a
// backing store without a format gets the pool type's default, as in libvirt.
// VIR_STORAGE_VOL_CREATE_VALIDATE in flags is ValidateVol's business, which
// the caller runs first.
func (c *Codec) ParseVol(doc string, pool *domain.PoolDef, flags uint32) (*domain.VolDef, error) {
	root, err := parseDoc(doc, "(storage_volume_definition)")
	if err != nil {
		return nil, err
	}
	if root.name.Local != "volume" {
		return nil, rootError("volume", root.name.Local)
	}
	info := typeInfos[pool.Type]
	def := &domain.VolDef{Type: domain.VolFile, Target: domain.VolTarget{Perms: domain.UnsetPerms()}}

	def.Name = root.str("name")
	if def.Name == "" {
		return nil, xmlError("missing volume name element")
	}
	def.Key = root.str("key")
	if t, _ := root.attr("type"); t != "" {
		vt, ok := volTypes[t]
		if !ok {
			return nil, domain.Errorf(domain.KindConfigUnsupported, "unknown volume type '%s'", t)
		}
		def.Type = vt
	}

	if bs := root.child("backingStore"); bs != nil && bs.str("path") != "" {
		b := &domain.BackingStore{Path: bs.str("path")}
		if info.hasVolOptions {
			f := ""
			if fn := bs.child("format"); fn != nil {
				f, _ = fn.attr("type")
			}
			if f == "" {
				f = info.defaultVol
			} else if indexOf(info.volParse, f) < 0 {
				return nil, domain.Errorf(domain.KindConfigUnsupported, "unknown volume format type %s", f)
			}
			b.Format = f
		}
		perms, err := parsePerms(bs.child("permissions"))
		if err != nil {
			return nil, err
		}
		b.Perms = perms
		def.Backing = b
	}

	if capNode := root.child("capacity"); capNode != nil && capNode.text() != "" {
		unit, _ := capNode.attr("unit")
		v, err := parseSize(capNode.text(), unit)
		if err != nil {
			return nil, err
		}
		def.Capacity, def.HasCapacity = v, true
	}
	if allocNode := root.child("allocation"); allocNode != nil && allocNode.text() != "" {
		unit, _ := allocNode.attr("unit")
		v, err := parseSize(allocNode.text(), unit)
		if err != nil {
			return nil, err
		}
		def.Allocation, def.HasAllocation = v, true
	} else {
		def.Allocation = def.Capacity
	}

	target := root.child("target")
	def.Target.Path = target.str("path")
	if info.hasVolOptions {
		if fn := target.child("format"); fn != nil {
			if f, _ := fn.attr("type"); f != "" {
				if indexOf(info.volParse, f) < 0 {
					return nil, domain.Errorf(domain.KindConfigUnsupported, "unknown volume format type %s", f)
				}
				def.Target.Format = f
			}
		}
	}
	perms, err := parsePerms(target.child("permissions"))
	if err != nil {
		return nil, err
	}
	def.Target.Perms = perms

	if enc := target.child("encryption"); enc != nil {
		e, err := parseEncryption(enc)
		if err != nil {
			return nil, err
		}
		def.Target.Encryption = e
	}

	def.Target.Compat = target.str("compat")
	if def.Target.Compat != "" && !validCompat(def.Target.Compat) {
		return nil, xmlError("forbidden characters in 'compat' attribute")
	}
	def.Target.Nocow = target.child("nocow") != nil

	if cs := target.child("clusterSize"); cs != nil && cs.text() != "" {
		v, ok := parseULL(cs.text())
		if !ok {
			return nil, xmlPropError("Invalid value '%s' for element or attribute './target/clusterSize'", cs.text())
		}
		unit, _ := cs.attr("unit")
		if v, err = scale(v, unit, math.MaxUint64); err != nil {
			return nil, err
		}
		def.Target.ClusterSize = v
	}

	if feats := target.child("features"); feats != nil {
		if def.Target.Compat == "" {
			def.Target.Compat = "1.1"
		}
		def.Target.HasFeatures = true
		for _, f := range feats.elements() {
			switch f.name.Local {
			case "lazy_refcounts":
				def.Target.LazyRefcounts = true
			case "extended_l2":
				def.Target.ExtendedL2 = true
			default:
				return nil, domain.Errorf(domain.KindConfigUnsupported, "unsupported feature %s", f.name.Local)
			}
		}
	}
	return def, nil
}

// parseSize is virStorageSize: a plain non-negative integer scaled by unit,
// at most 2^63-1 bytes because off_t is signed.
func parseSize(val, unit string) (uint64, error) {
	v, ok := parseULL(val)
	if !ok {
		return 0, xmlError("malformed capacity element")
	}
	return scale(v, unit, math.MaxInt64)
}

// validCompat is virStorageCheckCompat: "N.M" with numeric parts.
func validCompat(s string) bool {
	major, minor, ok := strings.Cut(s, ".")
	if !ok {
		return false
	}
	_, ok1 := parseULL(major)
	_, ok2 := parseULL(minor)
	return ok1 && ok2
}

// FormatVol formats a volume as virStorageVolDefFormat does.
func (c *Codec) FormatVol(pool *domain.PoolDef, vol *domain.VolDef) (string, error) {
	info := typeInfos[pool.Type]
	var w writer
	w.open("<volume type='%s'>", vol.Type)
	w.line("<name>%s</name>", esc(vol.Name))
	if vol.Key != "" {
		w.line("<key>%s</key>", esc(vol.Key))
	}
	if len(vol.Extents) > 0 {
		w.open("<source>")
		w.open("<device path='%s'>", esc(vol.SourceDevice))
		for _, e := range vol.Extents {
			w.line("<extent start='%d' end='%d'/>", e.Start, e.End)
		}
		w.close("device")
		w.close("source")
	}
	w.line("<capacity unit='bytes'>%d</capacity>", vol.Capacity)
	w.line("<allocation unit='bytes'>%d</allocation>", vol.Allocation)
	if vol.Physical != 0 {
		w.line("<physical unit='bytes'>%d</physical>", vol.Physical)
	}

	t := &vol.Target
	w.open("<target>")
	if t.Path != "" {
		w.line("<path>%s</path>", esc(t.Path))
	}
	if info.hasVolOptions {
		f := t.Format
		if f == "" {
			f = info.defaultVol
		}
		w.line("<format type='%s'/>", esc(f))
	}
	w.perms(t.Perms)
	w.timestamps(t.Timestamps)
	if t.Encryption.Encrypted() {
		formatEncryption(&w, &t.Encryption)
	}
	if t.Compat != "" {
		w.line("<compat>%s</compat>", esc(t.Compat))
	}
	if t.ClusterSize > 0 {
		w.line("<clusterSize unit='B'>%d</clusterSize>", t.ClusterSize)
	}
	switch {
	case t.LazyRefcounts || t.ExtendedL2:
		w.open("<features>")
		if t.LazyRefcounts {
			w.line("<lazy_refcounts/>")
		}
		if t.ExtendedL2 {
			w.line("<extended_l2/>")
		}
		w.close("features")
	case t.HasFeatures:
		w.line("<features/>")
	}
	w.close("target")

	if b := vol.Backing; b != nil && b.Path != "" {
		w.open("<backingStore>")
		w.line("<path>%s</path>", esc(b.Path))
		if info.hasVolOptions {
			f := b.Format
			if f == "" {
				f = info.defaultVol
			}
			w.line("<format type='%s'/>", esc(f))
		}
		w.perms(b.Perms)
		w.timestamps(b.Timestamps)
		w.close("backingStore")
	}
	w.close("volume")
	return w.String(), nil
}

// timestamp prints sec[.nsec] as libvirt does; a zero time (an unknown
// birth time) prints as 0.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	if ns := t.Nanosecond(); ns != 0 {
		return fmt.Sprintf("%d.%09d", t.Unix(), ns)
	}
	return fmt.Sprintf("%d", t.Unix())
}

// timestamps prints a <timestamps> block when the times are known.
func (w *writer) timestamps(ts *domain.Timestamps) {
	if ts == nil {
		return
	}
	w.open("<timestamps>")
	w.line("<atime>%s</atime>", timestamp(ts.Atime))
	w.line("<mtime>%s</mtime>", timestamp(ts.Mtime))
	w.line("<ctime>%s</ctime>", timestamp(ts.Ctime))
	w.line("<btime>%s</btime>", timestamp(ts.Btime))
	w.close("timestamps")
}
