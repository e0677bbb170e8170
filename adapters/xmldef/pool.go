// Package xmldef converts storage pool and volume XML to and from the domain
// model with libvirt 9.0's parsing rules, error texts and output shape.
package xmldef

import (
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// NamespaceFS is the XML namespace of <fs:mount_opts> in fs and netfs pools.
const NamespaceFS = "http://libvirt.org/schemas/storagepool/fs/1.0"

// NamespaceRBD is the XML namespace of <rbd:config_opts> in rbd pools.
const NamespaceRBD = "http://libvirt.org/schemas/storagepool/rbd/1.0"

// NamespaceThin is the XML namespace of virtstoraged's own <thin:provisioned>,
// shown in the live XML of thin-provisioned pools (docs/logical-thin.md). Being
// namespaced, it is ignored when the XML is defined again, here and by
// libvirt's parser (though not by libvirt's RelaxNG schema).
const NamespaceThin = "http://virtstoraged-go.org/schemas/storagepool/thin/1.0"

// Codec implements ports.XMLCodec.
type Codec struct {
	validator Validator // nil: ValidatePool and ValidateVol refuse
}

var _ ports.XMLCodec = (*Codec)(nil)

// New returns a Codec without a schema validator (NewValidating has one). It
// holds no state and is safe for concurrent use.
func New() *Codec { return &Codec{} }

// ParsePool parses pool XML as virStoragePoolDefParseString does. The flags
// are the define flags; VIR_STORAGE_POOL_DEFINE_VALIDATE is ValidatePool's
// business, which the caller runs first.
func (c *Codec) ParsePool(doc string, flags uint32) (*domain.PoolDef, error) {
	root, err := parseDoc(doc, "(storage_pool_definition)")
	if err != nil {
		return nil, err
	}
	if root.name.Local != "pool" {
		return nil, rootError("pool", root.name.Local)
	}
	return parsePoolNode(root)
}

func parsePoolNode(root *node) (*domain.PoolDef, error) {
	typ, ok := root.attr("type")
	if !ok {
		return nil, xmlPropError("Missing required attribute 'type' in element 'pool'")
	}
	pt, ok := domain.ParsePoolType(typ)
	if !ok {
		return nil, invalidAttr("type", "pool", typ, "")
	}
	info := typeInfos[pt]
	def := &domain.PoolDef{Type: pt, Target: domain.PoolTarget{Perms: domain.UnsetPerms()}}

	if src := root.child("source"); src != nil {
		s, err := parseSource(src, pt)
		if err != nil {
			return nil, err
		}
		def.Source = *s
	} else {
		def.Source.Format = info.defaultPool
	}

	def.Name = root.str("name")
	if def.Name == "" && info.flags&srcName != 0 {
		def.Name = def.Source.Name
	}
	if def.Name == "" {
		return nil, xmlError("missing pool source name element")
	}
	if strings.Contains(def.Name, "/") {
		return nil, xmlError("name %s cannot contain '/'", def.Name)
	}

	if u := root.str("uuid"); u == "" {
		def.UUID = domain.UUID(uuid.New())
	} else {
		parsed, err := parseUUID(u)
		if err != nil {
			return nil, xmlError("malformed uuid element")
		}
		def.UUID = parsed
	}

	if cow := root.child("features").child("cow"); cow != nil {
		state, err := tristate(cow, "state")
		if err != nil {
			return nil, err
		}
		if state != "" && pt != domain.PoolFS && pt != domain.PoolDir {
			return nil, domain.Errorf(domain.KindNoSupport, "cow feature may only be used for 'fs' and 'dir' pools")
		}
		def.COW = state
	}

	if info.flags&srcHost != 0 && len(def.Source.Hosts) == 0 {
		return nil, xmlError("missing storage pool source host name")
	}
	if info.flags&srcDir != 0 && def.Source.Dir == "" {
		return nil, xmlError("missing storage pool source path")
	}
	if info.flags&srcName != 0 && def.Source.Name == "" {
		def.Source.Name = def.Name
	}
	if info.flags&srcAdapter != 0 && def.Source.Adapter == nil {
		return nil, xmlError("missing storage pool source adapter")
	}
	if info.flags == srcDevice && len(def.Source.Devices) == 0 {
		return nil, xmlError("missing storage pool source device name")
	}

	if info.flags&srcNetwork == 0 {
		switch pt {
		case domain.PoolLogical:
			def.Target.Path = "/dev/" + def.Source.Name
		case domain.PoolZFS:
			def.Target.Path = "/dev/zvol/" + def.Source.Name
		default:
			p := root.str("target", "path")
			if p == "" {
				return nil, xmlError("missing storage pool target path")
			}
			def.Target.Path = p
		}
		def.Target.Path = sanitizePath(def.Target.Path)
		perms, err := parsePerms(root.child("target").child("permissions"))
		if err != nil {
			return nil, err
		}
		def.Target.Perms = perms
	}

	if pt == domain.PoolISCSIDirect && root.child("source").child("initiator").child("iqn") == nil {
		return nil, domain.Errorf(domain.KindConfigUnsupported, "missing initiator IQN")
	}

	alloc, err := parseRefresh(root)
	if err != nil {
		return nil, err
	}
	def.RefreshVolAllocation = alloc
	if pt == domain.PoolRBD {
		opts, err := parseRBDConfigOpts(root)
		if err != nil {
			return nil, err
		}
		def.RBDConfigOpts = opts
	}

	if pt == domain.PoolFS || pt == domain.PoolNetFS {
		if mo := root.childNS(NamespaceFS, "mount_opts"); mo != nil {
			for _, o := range mo.elements() {
				if o.name.Space != NamespaceFS || o.name.Local != "option" {
					continue
				}
				name, _ := o.attr("name")
				if name == "" {
					return nil, xmlError("no fs mount option name specified")
				}
				def.MountOpts = append(def.MountOpts, name)
			}
		}
	}
	return def, nil
}

// parseUUID accepts what virUUIDParse accepts: 32 hex digits, with dashes
// between byte pairs and blanks around.
func parseUUID(s string) (domain.UUID, error) {
	s = strings.TrimSpace(s)
	return domain.ParseUUID(s)
}

// parseSource reads a <source> element (virStoragePoolDefParseSource).
func parseSource(src *node, pt domain.PoolType) (*domain.PoolSource, error) {
	info := typeInfos[pt]
	s := &domain.PoolSource{Name: src.str("name")}
	if pt == domain.PoolRBD && s.Name == "" {
		return nil, xmlError("element 'name' is mandatory for RBD pool")
	}
	formatIdx := 0
	if info.poolFormats != nil {
		f := ""
		if fn := src.child("format"); fn != nil {
			f, _ = fn.attr("type")
		}
		if f == "" {
			s.Format = info.defaultPool
			formatIdx = indexOf(info.poolFormats, s.Format)
		} else {
			formatIdx = indexOf(info.poolFormats, f)
			if formatIdx < 0 {
				return nil, domain.Errorf(domain.KindConfigUnsupported, "unknown pool format type %s", f)
			}
			s.Format = f
		}
	}
	for _, h := range src.children("host") {
		name, ok := h.attr("name")
		if !ok {
			return nil, xmlError("missing storage pool host name")
		}
		host := domain.SourceHost{Name: name}
		if p, ok := h.attr("port"); ok {
			v, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				return nil, invalidAttr("port", "host", p, " Expected integer value")
			}
			host.Port = int(v)
		}
		s.Hosts = append(s.Hosts, host)
	}
	for _, d := range src.children("device") {
		path, ok := d.attr("path")
		if !ok {
			return nil, xmlError("missing storage pool source device path")
		}
		sep, err := tristate(d, "part_separator")
		if err != nil {
			return nil, err
		}
		dev := domain.SourceDevice{Path: path, PartSeparator: sep}
		for _, fe := range d.children("freeExtent") {
			st, _ := fe.attr("start")
			en, _ := fe.attr("end")
			a, _ := strconv.ParseUint(st, 10, 64)
			b, _ := strconv.ParseUint(en, 10, 64)
			dev.FreeExtents = append(dev.FreeExtents, domain.Extent{Start: a, End: b})
		}
		s.Devices = append(s.Devices, dev)
	}
	if d := src.child("dir"); d != nil {
		if p, _ := d.attr("path"); p != "" {
			s.Dir = sanitizePath(p)
		}
	}
	if s.Dir == "" && pt == domain.PoolGluster {
		s.Dir = "/"
	}
	if a := src.child("adapter"); a != nil {
		ad, err := parseAdapter(a)
		if err != nil {
			return nil, err
		}
		s.Adapter = ad
	}
	s.Initiator = parseInitiator(src)
	if a := src.child("auth"); a != nil {
		auth, err := parseAuth(a)
		if err != nil {
			return nil, err
		}
		s.Auth = auth
	}
	if p := src.child("protocol"); p != nil {
		if ver, _ := p.attr("ver"); ver != "" {
			if formatIdx != 0 && formatIdx != 1 {
				name := "(null)"
				if netfs := typeInfos[domain.PoolNetFS].poolFormats; formatIdx < len(netfs) {
					name = netfs[formatIdx]
				}
				return nil, domain.Errorf(domain.KindConfigUnsupported, "storage pool protocol ver unsupported for pool type '%s'", name)
			}
			s.ProtocolVer = ver
		}
	}
	if v := src.child("vendor"); v != nil {
		s.Vendor, _ = v.attr("name")
	}
	if p := src.child("product"); p != nil {
		s.Product, _ = p.attr("name")
	}
	return s, nil
}

// FormatPool formats a pool as virStoragePoolDefFormat does; stats nil gives
// the figures of an inactive pool (0).
func (c *Codec) FormatPool(def *domain.PoolDef, stats *domain.PoolStats) (string, error) {
	var w writer
	formatPool(&w, def, stats)
	return w.String(), nil
}

func formatPool(w *writer, def *domain.PoolDef, stats *domain.PoolStats) {
	if stats == nil {
		stats = &domain.PoolStats{}
	}
	ns := ""
	fsLike := def.Type == domain.PoolFS || def.Type == domain.PoolNetFS
	if fsLike && len(def.MountOpts) > 0 {
		ns = " xmlns:fs='" + NamespaceFS + "'"
	}
	rbdOpts := def.Type == domain.PoolRBD && len(def.RBDConfigOpts) > 0
	if rbdOpts {
		ns += " xmlns:rbd='" + NamespaceRBD + "'"
	}
	if stats.Thin {
		ns += " xmlns:thin='" + NamespaceThin + "'"
	}
	w.open("<pool type='%s'%s>", def.Type, ns)
	w.line("<name>%s</name>", esc(def.Name))
	w.line("<uuid>%s</uuid>", def.UUID)
	w.line("<capacity unit='bytes'>%d</capacity>", stats.Capacity)
	w.line("<allocation unit='bytes'>%d</allocation>", stats.Allocation)
	w.line("<available unit='bytes'>%d</available>", stats.Available)
	if stats.Thin {
		w.line("<thin:provisioned unit='bytes'>%d</thin:provisioned>", stats.Provisioned)
	}
	if def.COW != "" {
		w.open("<features>")
		w.line("<cow state='%s'/>", def.COW)
		w.close("features")
	}
	formatSource(w, def.Type, &def.Source)
	switch def.Type {
	case domain.PoolRBD, domain.PoolSheepdog, domain.PoolGluster, domain.PoolISCSIDirect:
	default:
		w.open("<target>")
		if def.Target.Path != "" {
			w.line("<path>%s</path>", esc(def.Target.Path))
		}
		perms := def.Target.Perms
		if stats.TargetPerms != nil {
			perms = *stats.TargetPerms // the live XML shows what the directory really has
		}
		w.perms(perms)
		w.close("target")
	}
	if def.RefreshVolAllocation != "" {
		w.open("<refresh>")
		w.line("<volume allocation='%s'/>", def.RefreshVolAllocation)
		w.close("refresh")
	}
	if rbdOpts {
		w.open("<rbd:config_opts>")
		for _, o := range def.RBDConfigOpts {
			w.line("<rbd:option name='%s' value='%s'/>", esc(o.Name), esc(o.Value))
		}
		w.close("rbd:config_opts")
	}
	if fsLike && len(def.MountOpts) > 0 {
		w.open("<fs:mount_opts>")
		for _, o := range def.MountOpts {
			w.line("<fs:option name='%s'/>", esc(o))
		}
		w.close("fs:mount_opts")
	}
	w.close("pool")
}

// formatSource prints a <source> with the parts the pool type uses, in
// libvirt's order.
func formatSource(w *writer, pt domain.PoolType, s *domain.PoolSource) {
	info := typeInfos[pt]
	w.open("<source>")
	if info.flags&srcHost != 0 {
		for _, h := range s.Hosts {
			if h.Port != 0 {
				w.line("<host name='%s' port='%d'/>", esc(h.Name), h.Port)
			} else {
				w.line("<host name='%s'/>", esc(h.Name))
			}
		}
	}
	if info.flags&srcDevice != 0 {
		for _, d := range s.Devices {
			attrs := "path='" + esc(d.Path) + "'"
			if d.PartSeparator != "" {
				attrs += " part_separator='" + d.PartSeparator + "'"
			}
			if len(d.FreeExtents) == 0 {
				w.line("<device %s/>", attrs)
				continue
			}
			w.open("<device %s>", attrs)
			for _, e := range d.FreeExtents {
				w.line("<freeExtent start='%d' end='%d'/>", e.Start, e.End)
			}
			w.close("device")
		}
	}
	if info.flags&srcDir != 0 && s.Dir != "" {
		w.line("<dir path='%s'/>", esc(s.Dir))
	}
	if info.flags&srcAdapter != 0 && s.Adapter != nil {
		formatAdapter(w, s.Adapter)
	}
	if info.flags&srcName != 0 && s.Name != "" {
		w.line("<name>%s</name>", esc(s.Name))
	}
	if info.flags&srcInitiatorIQN != 0 && s.Initiator != "" {
		w.open("<initiator>")
		w.line("<iqn name='%s'/>", esc(s.Initiator))
		w.close("initiator")
	}
	if info.poolFormats != nil {
		f := s.Format
		if f == "" {
			f = info.defaultPool
		}
		w.line("<format type='%s'/>", esc(f))
	}
	if s.Auth != nil {
		formatAuth(w, s.Auth)
	}
	if s.ProtocolVer != "" {
		w.line("<protocol ver='%s'/>", esc(s.ProtocolVer))
	}
	if s.Vendor != "" {
		w.line("<vendor name='%s'/>", esc(s.Vendor))
	}
	if s.Product != "" {
		w.line("<product name='%s'/>", esc(s.Product))
	}
	w.close("source")
}

// FormatPoolStatus formats libvirt's run-time state document: the pool inside
// <poolstate>, indented one level.
func (c *Codec) FormatPoolStatus(def *domain.PoolDef, stats *domain.PoolStats) (string, error) {
	var w writer
	w.open("<poolstate>")
	formatPool(&w, def, stats)
	w.close("poolstate")
	return w.String(), nil
}

// ParsePoolStatus reads a <poolstate> document (with or without libvirt's
// leading comment).
func (c *Codec) ParsePoolStatus(doc string) (*domain.PoolDef, error) {
	root, err := parseDoc(doc, "(pool_state)")
	if err != nil {
		return nil, err
	}
	if root.name.Local != "poolstate" {
		return nil, rootError("poolstate", root.name.Local)
	}
	pool := root.child("pool")
	if pool == nil {
		return nil, xmlError("Could not find any 'pool' element in state file")
	}
	return parsePoolNode(pool)
}

// ParsePoolSource parses the srcSpec of virConnectFindStoragePoolSources.
func (c *Codec) ParsePoolSource(poolType domain.PoolType, doc string) (*domain.PoolSource, error) {
	if strings.TrimSpace(doc) == "" {
		return &domain.PoolSource{}, nil
	}
	root, err := parseDoc(doc, "(storage_source_specification)")
	if err != nil {
		return nil, err
	}
	if root.name.Local != "source" {
		return nil, rootError("source", root.name.Local)
	}
	return parseSource(root, poolType)
}

// FormatPoolSources formats the <sources> answer of source discovery.
func (c *Codec) FormatPoolSources(poolType domain.PoolType, sources []domain.PoolSource) (string, error) {
	var w writer
	w.open("<sources>")
	for i := range sources {
		formatSource(&w, poolType, &sources[i])
	}
	w.close("sources")
	return w.String(), nil
}
