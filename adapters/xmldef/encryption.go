package xmldef

import (
	"strconv"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// encryptionEngines are virStorageEncryptionEngine's names; "default" is
// the absence of the attribute.
var encryptionEngines = []string{"default", "qemu", "librbd"}

// secretTypes are virStorageEncryptionSecretType's names.
var secretTypes = []string{"passphrase"}

// parseEncryption reads a volume's <encryption> as virStorageEncryptionParseNode
// does: the format, every <secret>, and for LUKS the first <cipher> and
// <ivgen>. How many secrets a format needs is checked where the volume is
// made, not here.
func parseEncryption(n *node) (domain.VolEncryption, error) {
	var e domain.VolEncryption
	f, ok := n.attr("format")
	if !ok {
		return e, xmlError("unknown volume encryption format")
	}
	if indexOf(encryptionFormats, f) < 0 {
		return e, domain.Errorf(domain.KindConfigUnsupported, "unknown volume encryption format type %s", f)
	}
	e.Format = f
	if eng, ok := n.attr("engine"); ok {
		// virXMLPropEnum with NONZERO: "default" is not written either.
		if indexOf(encryptionEngines, eng) < 1 {
			return e, invalidAttr("engine", "encryption", eng, "")
		}
		e.Engine = eng
	}
	for _, sn := range n.children("secret") {
		ref, err := parseEncryptionSecret(sn)
		if err != nil {
			return e, err
		}
		e.Secrets = append(e.Secrets, ref)
	}
	if e.Format != "luks" {
		return e, nil
	}
	if c := n.child("cipher"); c != nil {
		name, ok := c.attr("name")
		if !ok {
			return e, xmlError("cipher info missing 'name' attribute")
		}
		size, ok := c.attr("size")
		if !ok {
			return e, xmlPropError("Missing required attribute 'size' in element 'cipher'")
		}
		v, err := strconv.ParseUint(size, 10, 32)
		if err != nil {
			return e, invalidAttr("size", "cipher", size, " Expected non-negative integer value")
		}
		e.Cipher = domain.EncryptionCipher{Name: name, Size: uint32(v)}
		e.Cipher.Mode, _ = c.attr("mode")
		e.Cipher.Hash, _ = c.attr("hash")
	}
	if iv := n.child("ivgen"); iv != nil {
		if e.Cipher.Name == "" {
			return e, xmlError("ivgen element found, but cipher is missing")
		}
		name, ok := iv.attr("name")
		if !ok {
			return e, xmlError("missing ivgen info name string")
		}
		e.Ivgen.Name = name
		e.Ivgen.Hash, _ = iv.attr("hash")
	}
	return e, nil
}

// parseEncryptionSecret reads one <secret type='passphrase' uuid|usage='...'/>
// (virStorageEncryptionSecretParse, then virSecretLookupParseSecret, whose
// errors are in no domain).
func parseEncryptionSecret(n *node) (domain.SecretRef, error) {
	typ, ok := n.attr("type")
	if !ok {
		return domain.SecretRef{}, xmlError("unknown volume encryption secret type")
	}
	if indexOf(secretTypes, typ) < 0 {
		return domain.SecretRef{}, domain.Errorf(domain.KindConfigUnsupported, "unknown volume encryption secret type %s", typ)
	}
	uuid, hasUUID := n.attr("uuid")
	usage, hasUsage := n.attr("usage")
	switch {
	case !hasUUID && !hasUsage:
		return domain.SecretRef{}, noDomainXMLError("missing secret uuid or usage attribute")
	case hasUUID && hasUsage:
		return domain.SecretRef{}, noDomainXMLError("either secret uuid or usage expected")
	case hasUsage:
		return domain.SecretByUsage(usage), nil
	}
	u, err := domain.ParseUUID(uuid)
	if err != nil {
		return domain.SecretRef{}, noDomainXMLError("invalid secret uuid '%s'", uuid)
	}
	return domain.SecretByUUID(u), nil
}

// noDomainXMLError is VIR_ERR_XML_ERROR from libvirt's util code, which
// reports in no error domain.
func noDomainXMLError(format string, args ...any) error {
	e := domain.Errorf(domain.KindXMLError, format, args...)
	e.NoDomain = true
	return e
}

// formatEncryption writes <encryption> as virStorageEncryptionFormat does:
// the secrets by UUID or usage as they were named, then for LUKS the cipher
// and ivgen when a cipher was given. An element with nothing inside keeps
// its closing tag on a line of its own, as libvirt prints it.
func formatEncryption(w *writer, e *domain.VolEncryption) {
	if e.Engine != "" {
		w.open("<encryption format='%s' engine='%s'>", esc(e.Format), esc(e.Engine))
	} else {
		w.open("<encryption format='%s'>", esc(e.Format))
	}
	for _, s := range e.Secrets {
		if s.ByUUID {
			w.line("<secret type='passphrase' uuid='%s'/>", s.UUID)
		} else {
			w.line("<secret type='passphrase' usage='%s'/>", esc(s.Usage))
		}
	}
	if e.Format == "luks" && e.Cipher.Name != "" {
		c := e.Cipher
		line := "<cipher name='" + esc(c.Name) + "' size='" + strconv.FormatUint(uint64(c.Size), 10) + "'"
		if c.Mode != "" {
			line += " mode='" + esc(c.Mode) + "'"
		}
		if c.Hash != "" {
			line += " hash='" + esc(c.Hash) + "'"
		}
		w.line("%s/>", line)
		if e.Ivgen.Name != "" {
			line = "<ivgen name='" + esc(e.Ivgen.Name) + "'"
			if e.Ivgen.Hash != "" {
				line += " hash='" + esc(e.Ivgen.Hash) + "'"
			}
			w.line("%s/>", line)
		}
	}
	w.close("encryption")
}
