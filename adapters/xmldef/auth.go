package xmldef

import (
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// authTypes are the <auth type> values libvirt knows (virStorageAuthType).
var authTypes = []string{"chap", "ceph"}

// parseAuth reads a pool source's <auth> as virStorageAuthDefParse and its
// caller do, with their checks in their order: a known type if one is given,
// a username, a <secret> naming the key by uuid or usage (not both), and
// finally the type itself, which pools require.
func parseAuth(n *node) (*domain.PoolAuth, error) {
	a := &domain.PoolAuth{}
	if t, ok := n.attr("type"); ok && t != "" {
		if indexOf(authTypes, t) < 0 {
			return nil, domain.Errorf(domain.KindConfigUnsupported, "unknown auth type '%s'", t)
		}
		a.Type = t
	}
	if a.Username, _ = n.attr("username"); a.Username == "" {
		return nil, xmlError("missing username for auth")
	}
	sec := n.child("secret")
	if sec == nil {
		return nil, xmlError("Missing <secret> element in auth")
	}
	a.SecretType, _ = sec.attr("type")
	u, hasUUID := sec.attr("uuid")
	usage, hasUsage := sec.attr("usage")
	switch {
	case hasUUID && hasUsage:
		return nil, secretError("either secret uuid or usage expected")
	case hasUUID:
		parsed, err := parseUUID(u)
		if err != nil {
			return nil, secretError("invalid secret uuid '%s'", u)
		}
		a.SecretUUID = parsed.String()
	case hasUsage:
		a.SecretUsage = usage
	default:
		return nil, secretError("missing secret uuid or usage attribute")
	}
	if a.Type == "" {
		return nil, domain.Errorf(domain.KindConfigUnsupported, "storage pool missing auth type")
	}
	return a, nil
}

// secretError is an XML error of libvirt's generic secret reference parser,
// which reports in no error domain.
func secretError(format string, args ...any) error {
	e := domain.Errorf(domain.KindXMLError, format, args...)
	e.NoDomain = true
	return e
}

// formatAuth prints <auth> as virStorageAuthDefFormat does.
func formatAuth(w *writer, a *domain.PoolAuth) {
	w.open("<auth type='%s' username='%s'>", a.Type, esc(a.Username))
	attrs := ""
	if a.SecretType != "" {
		attrs = " type='" + esc(a.SecretType) + "'"
	}
	if a.SecretUUID != "" {
		attrs += " uuid='" + a.SecretUUID + "'"
	} else {
		attrs += " usage='" + esc(a.SecretUsage) + "'"
	}
	w.line("<secret%s/>", attrs)
	w.close("auth")
}

// refreshAllocations are the <refresh><volume allocation> values
// (virStorageVolDefRefreshAllocation).
var refreshAllocations = []string{"default", "capacity"}

// parseRefresh reads <refresh><volume allocation='...'/>; an element without
// the attribute counts as absent, as in libvirt.
func parseRefresh(root *node) (string, error) {
	v, ok := root.child("refresh").child("volume").attr("allocation")
	if !ok {
		return "", nil
	}
	if indexOf(refreshAllocations, v) < 0 {
		return "", domain.Errorf(domain.KindConfigUnsupported, "unknown storage pool volume refresh allocation type %s", v)
	}
	return v, nil
}

// parseRBDConfigOpts reads an rbd pool's <rbd:config_opts>, with the texts
// of libvirt's rbd namespace parser.
func parseRBDConfigOpts(root *node) ([]domain.ConfigOpt, error) {
	co := root.childNS(NamespaceRBD, "config_opts")
	if co == nil {
		return nil, nil
	}
	var opts []domain.ConfigOpt
	for _, o := range co.elements() {
		if o.name.Space != NamespaceRBD || o.name.Local != "option" {
			continue
		}
		name, ok := o.attr("name")
		if !ok {
			return nil, xmlError("no rbd option name specified")
		}
		if name == "" {
			return nil, xmlError("empty rbd option name specified")
		}
		value, ok := o.attr("value")
		if !ok {
			return nil, xmlError("no rbd option value specified for name '%s'", name)
		}
		if value == "" {
			return nil, xmlError("empty rbd option value specified for name '%s'", name)
		}
		opts = append(opts, domain.ConfigOpt{Name: name, Value: value})
	}
	return opts, nil
}
