package xmldef

import (
	"context"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/relaxng"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// Validator checks a document against one of libvirt's RelaxNG schemas
// (adapters/relaxng).
type Validator interface {
	Validate(ctx context.Context, schema relaxng.Schema, doc string) error
}

// NewValidating returns a Codec whose ValidatePool and ValidateVol check
// documents with v.
func NewValidating(v Validator) *Codec { return &Codec{validator: v} }

// ValidatePool checks pool XML against libvirt's storagepool.rng, as
// VIR_STORAGE_POOL_DEFINE_VALIDATE asks: libvirt's virXMLParse first parses
// the document and checks its root element, with ParsePool's errors, and
// only then validates it.
func (c *Codec) ValidatePool(ctx context.Context, doc string) error {
	return c.validate(ctx, doc, "(storage_pool_definition)", "pool", relaxng.Pool)
}

// ValidateVol checks volume XML against libvirt's storagevol.rng, as
// VIR_STORAGE_VOL_CREATE_VALIDATE asks, after ParseVol's parse and root
// element checks.
func (c *Codec) ValidateVol(ctx context.Context, doc string) error {
	return c.validate(ctx, doc, "(storage_volume_definition)", "volume", relaxng.Vol)
}

func (c *Codec) validate(ctx context.Context, doc, what, rootName string, schema relaxng.Schema) error {
	root, err := parseDoc(doc, what)
	if err != nil {
		return err
	}
	if root.name.Local != rootName {
		return rootError(rootName, root.name.Local)
	}
	if c.validator == nil {
		return domain.Errorf(domain.KindOperationUnsupported, "cannot validate against %s/%s: no schema validator configured", relaxng.LibvirtSchemaDir, schema)
	}
	// Our own extension elements (the live thin pool figures) are not in
	// libvirt's schema; like libvirt's parser, validation passes over them, so
	// that a dumped thin pool defines again with --validate.
	return c.validator.Validate(ctx, schema, cutNamespace(doc, root, NamespaceThin))
}

// cutNamespace returns doc without the elements of namespace ns, unchanged
// byte for byte elsewhere, so that libxml2 reports on the rest as it would on
// the original.
func cutNamespace(doc string, root *node, ns string) string {
	var spans [][2]int
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.elements() {
			if c.name.Space == ns {
				spans = append(spans, [2]int{c.begin, c.end})
				continue
			}
			walk(c)
		}
	}
	walk(root)
	if len(spans) == 0 {
		return doc
	}
	var b strings.Builder
	last := 0
	for _, s := range spans {
		b.WriteString(doc[last:s[0]])
		last = s[1]
	}
	b.WriteString(doc[last:])
	return b.String()
}
