package xmldef

import (
	"strconv"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// utilError is an error libvirt raises from its util code, in no error
// domain (VIR_FROM_NONE): the secret lookup's, the WWN check's, the PCI
// address range check's.
func utilError(kind domain.Kind, format string, args ...any) error {
	e := domain.Errorf(kind, format, args...)
	e.NoDomain = true
	return e
}

// parseInitiator reads the first <initiator><iqn name/></initiator>.
func parseInitiator(src *node) string {
	name, _ := src.child("initiator").child("iqn").attr("name")
	return name
}

// parseAdapter reads a scsi pool's <adapter> (virStorageAdapterParseXML and
// its validation): a scsi_host by name or by parent PCI address and
// unique_id, or an fc_host by WWNN/WWPN. Without a type, an adapter with a
// name is libvirt's legacy scsi_host form, and one without is no adapter.
func parseAdapter(n *node) (*domain.SourceAdapter, error) {
	a := &domain.SourceAdapter{}
	typ, hasType := n.attr("type")
	switch {
	case hasType && typ != domain.AdapterSCSIHost && typ != domain.AdapterFCHost:
		return nil, invalidAttr("type", "adapter", typ, "")
	case hasType:
		a.Type = typ
	default:
		if name, _ := n.attr("name"); name == "" {
			return nil, nil
		}
		a.Type = domain.AdapterSCSIHost
	}
	if a.Type == domain.AdapterFCHost {
		return a, parseFCHost(n, a)
	}
	a.Name, _ = n.attr("name")
	pa := n.child("parentaddr")
	if pa != nil {
		uid, ok := pa.attr("unique_id")
		v, err := strconv.ParseUint(strings.TrimSpace(uid), 10, 32)
		if !ok || err != nil {
			return nil, xmlError("Missing or invalid scsi adapter 'unique_id' value")
		}
		a.UniqueID = uint32(v)
		addr := pa.child("address")
		if addr == nil {
			return nil, xmlError("Missing scsi_host PCI address element")
		}
		if a.ParentAddr, err = parsePCIAddress(addr); err != nil {
			return nil, err
		}
	}
	switch {
	case a.Name == "" && a.ParentAddr == nil:
		return nil, xmlError("Either 'name' or 'parent' must be specified for the 'scsi_host' adapter")
	case a.Name != "" && a.ParentAddr != nil:
		return nil, xmlError("Both 'name' and 'parent' cannot be specified for the 'scsi_host' adapter")
	}
	return a, nil
}

func parseFCHost(n *node, a *domain.SourceAdapter) error {
	a.Parent, _ = n.attr("parent")
	a.ParentWWNN, _ = n.attr("parent_wwnn")
	a.ParentWWPN, _ = n.attr("parent_wwpn")
	a.ParentFabricWWN, _ = n.attr("parent_fabric_wwn")
	a.WWNN, _ = n.attr("wwnn")
	a.WWPN, _ = n.attr("wwpn")
	managed, err := tristate(n, "managed")
	if err != nil {
		return err
	}
	a.Managed = managed
	if a.WWNN == "" || a.WWPN == "" {
		return xmlError("'wwnn' and 'wwpn' must be specified for adapter type 'fchost'")
	}
	for _, w := range []string{a.WWNN, a.WWPN} {
		if err := validateWWN(w); err != nil {
			return err
		}
	}
	switch {
	case a.ParentWWNN != "" && a.ParentWWPN == "":
		return xmlError("when providing parent_wwnn='%s', the parent_wwpn must also be provided", a.ParentWWNN)
	case a.ParentWWPN != "" && a.ParentWWNN == "":
		return xmlError("when providing parent_wwpn='%s', the parent_wwnn must also be provided", a.ParentWWPN)
	}
	for _, w := range []string{a.ParentWWNN, a.ParentWWPN, a.ParentFabricWWN} {
		if w == "" {
			continue
		}
		if err := validateWWN(w); err != nil {
			return err
		}
	}
	return nil
}

// validateWWN is libvirt's virValidateWWN: 16 hex digits after an optional
// "0x".
func validateWWN(w string) error {
	h := strings.TrimPrefix(w, "0x")
	if len(h) != 16 || strings.Trim(h, "0123456789abcdefABCDEF") != "" {
		return utilError(domain.KindInternal, "Malformed wwn: %s", w)
	}
	return nil
}

// parsePCIAddress reads <address domain bus slot function/>, each number in
// any base strtoul takes (0x1f, 31), with libvirt's range checks (it checks
// no function number on this path).
func parsePCIAddress(n *node) (*domain.PCIAddress, error) {
	var v [4]uint32
	limits := [3]uint64{0xFFFF, 0xFF, 0x1F}
	for i, name := range []string{"domain", "bus", "slot", "function"} {
		s, ok := n.attr(name)
		if !ok {
			continue
		}
		x, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
		if err != nil {
			return nil, invalidAttr(name, "address", s, " Expected non-negative integer value")
		}
		if i < len(limits) && x > limits[i] {
			return nil, utilError(domain.KindXMLError, "Invalid PCI address %s='0x%x', must be <= 0x%X", name, x, limits[i])
		}
		v[i] = uint32(x)
	}
	return &domain.PCIAddress{Domain: v[0], Bus: v[1], Slot: v[2], Function: v[3]}, nil
}

// formatAdapter prints an <adapter> as virStorageAdapterFormat does.
func formatAdapter(w *writer, a *domain.SourceAdapter) {
	if a.Type == domain.AdapterFCHost {
		attrs := "type='fc_host'"
		for _, kv := range [][2]string{{"parent", a.Parent}, {"parent_wwnn", a.ParentWWNN}, {"parent_wwpn", a.ParentWWPN},
			{"parent_fabric_wwn", a.ParentFabricWWN}, {"managed", a.Managed}, {"wwnn", a.WWNN}, {"wwpn", a.WWPN}} {
			if kv[1] != "" {
				attrs += " " + kv[0] + "='" + esc(kv[1]) + "'"
			}
		}
		w.line("<adapter %s/>", attrs)
		return
	}
	if a.ParentAddr == nil {
		w.line("<adapter type='scsi_host' name='%s'/>", esc(a.Name))
		return
	}
	w.open("<adapter type='scsi_host'>")
	w.open("<parentaddr unique_id='%d'>", a.UniqueID)
	p := a.ParentAddr
	w.line("<address domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'/>", p.Domain, p.Bus, p.Slot, p.Function)
	w.close("parentaddr")
	w.close("adapter")
}
