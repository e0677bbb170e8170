package xmldef_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/relaxng"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// recordingValidator keeps what it was asked to validate and answers valid.
type recordingValidator struct{ docs []string }

func (r *recordingValidator) Validate(_ context.Context, _ relaxng.Schema, doc string) error {
	r.docs = append(r.docs, doc)
	return nil
}

// realCodec validates with xmllint on libvirt's schemas.
func realCodec(t *testing.T) *xmldef.Codec {
	t.Helper()
	testkit.RequireTool(t, relaxng.Program)
	v := relaxng.New(osexec.New(nil), relaxng.Dir(filepath.Join(t.TempDir(), "schemas")))
	t.Cleanup(func() { _ = v.Close() })
	return xmldef.NewValidating(v)
}

const schemaPrefix = "XML document failed to validate against schema: Unable to validate doc against /usr/share/libvirt/schemas/"

// libvirt parses and checks the root before it validates: those errors come
// first, whatever the schema would say, and reach no validator.
func TestValidateParsesFirst(t *testing.T) {
	t.Parallel()
	rec := &recordingValidator{}
	c := xmldef.NewValidating(rec)
	checkErr(t, c.ValidatePool(context.Background(), "<volume><name>a</name></volume>"),
		"XML error: expecting root element of 'pool', not 'volume'", 27, 5)
	checkErr(t, c.ValidateVol(context.Background(), "<pool type='dir'><name>x</name></pool>"),
		"XML error: expecting root element of 'volume', not 'pool'", 27, 5)
	checkErr(t, c.ValidatePool(context.Background(), "<pool type='dir'>\n<name>x</name>"),
		"(storage_pool_definition):2: Premature end of data in tag pool line 1\n<name>x</name>\n--------------^", 35, 18)
	if len(rec.docs) != 0 {
		t.Errorf("validator ran on %q", rec.docs)
	}
	if err := xmldef.New().ValidatePool(context.Background(), "<pool type='dir'/>"); domain.KindOf(err) != domain.KindOperationUnsupported {
		t.Errorf("without a validator: %v, want KindOperationUnsupported", err)
	}
}

// Every text below is what libvirtd 9.0 answered to virsh pool-define
// --validate and vol-create --validate for the same document.
func TestValidateMatchesLibvirt(t *testing.T) {
	t.Parallel()
	c := realCodec(t)
	const tgt = "<target><path>/tmp/x</path></target>"
	tests := []struct {
		name    string
		give    string
		vol     bool
		wantErr string
	}{
		{name: "valid pool", give: "<pool type='dir'><name>a</name>" + tgt + "</pool>"},
		{name: "valid volume", vol: true, give: "<volume><name>v</name><capacity>1024</capacity><target><format type='qcow2'/><permissions><mode>0600</mode></permissions><features><lazy_refcounts/></features></target></volume>"},
		{name: "unknown element", give: "<pool type='dir'><name>vx1</name><bogus/>" + tgt + "</pool>",
			wantErr: schemaPrefix + "storagepool.rng\nExpecting an element target, got nothing\nInvalid sequence in interleave\nElement pool failed to validate content\n"},
		{name: "bad pool type", give: "<pool type='bogus'><name>vx2</name>" + tgt + "</pool>",
			wantErr: schemaPrefix + "storagepool.rng\nElement pool failed to validate content\n"},
		{name: "missing name", give: "<pool type='dir'>" + tgt + "</pool>",
			wantErr: schemaPrefix + "storagepool.rng\nExpecting an element name, got nothing\nInvalid sequence in interleave\nElement pool failed to validate content\n"},
		{name: "bad mode", give: "<pool type='dir'><name>vx5</name><target><path>/tmp/x</path><permissions><mode>abc</mode></permissions></target></pool>",
			wantErr: schemaPrefix + "storagepool.rng\nExtra element permissions in interleave\nElement target failed to validate content\nInvalid sequence in interleave\nElement pool failed to validate content\n"},
		{name: "bad uuid", give: "<pool type='dir'><name>vx6</name><uuid>zzz</uuid>" + tgt + "</pool>",
			wantErr: schemaPrefix + "storagepool.rng\nExtra element uuid in interleave\nInvalid sequence in interleave\nElement pool failed to validate content\n"},
		{name: "unknown volume element", vol: true, give: "<volume><name>v1</name><capacity>1024</capacity><bogus/></volume>",
			wantErr: schemaPrefix + "storagevol.rng\nExpecting an element target, got nothing\nInvalid sequence in interleave\nElement volume failed to validate content\n"},
		{name: "bad volume type", vol: true, give: "<volume type='weird'><name>v2</name><capacity>1024</capacity></volume>",
			wantErr: schemaPrefix + "storagevol.rng\nExpecting an element target, got nothing\nInvalid sequence in interleave\nElement volume failed to validate content\n"},
		{name: "bad capacity unit", vol: true, give: "<volume><name>v5</name><capacity unit='QQ'>1024</capacity><target><format type='qcow2'/></target></volume>",
			wantErr: schemaPrefix + "storagevol.rng\nExtra element capacity in interleave\nInvalid sequence in interleave\nElement volume failed to validate content\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.vol {
				err = c.ValidateVol(context.Background(), tt.give)
			} else {
				err = c.ValidatePool(context.Background(), tt.give)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				return
			}
			checkErr(t, err, tt.wantErr, 92, 5)
		})
	}
}

// What we print validates against libvirt's own schemas whenever what we
// read did: the golden files' outputs of the valid inputs. (Some inputs are
// invalid on purpose, such as two devices in an fs pool, which libvirt's
// parser takes and its formatter prints as they are.)
func TestFormattedXMLValidates(t *testing.T) {
	t.Parallel()
	c := realCodec(t)
	validate := func(vol bool, doc string) error {
		if vol {
			return c.ValidateVol(context.Background(), doc)
		}
		return c.ValidatePool(context.Background(), doc)
	}
	checked := 0
	for _, dir := range []string{"pool", "vol"} {
		for _, in := range inputs(t, dir+"-in") {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			if validate(dir == "vol", string(src)) != nil {
				continue
			}
			checked++
			out, err := os.ReadFile(filepath.Join("testdata", dir+"-out", filepath.Base(in)))
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(dir == "vol", string(out)); err != nil {
				t.Errorf("%s-out/%s: %v", dir, filepath.Base(in), err)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no golden input validates: nothing checked")
	}
	t.Logf("%d formatted documents validated", checked)
}

// A thin pool's live XML (with our namespaced figure, which libvirt's schema
// does not know) defines again with --validate; the validator sees the
// document without our element and otherwise byte for byte.
func TestValidateThinPool(t *testing.T) {
	t.Parallel()
	def := &domain.PoolDef{Type: domain.PoolLogical, Name: "thin", UUID: domain.UUID{1},
		Source: domain.PoolSource{Name: "vg0/tpool", Format: "lvm2"},
		Target: domain.PoolTarget{Path: "/dev/vg0", Perms: domain.UnsetPerms()}}
	live, err := xmldef.New().FormatPool(def, &domain.PoolStats{Capacity: 100, Allocation: 25, Available: 75, Thin: true, Provisioned: 300})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingValidator{}
	if err := xmldef.NewValidating(rec).ValidatePool(context.Background(), live); err != nil {
		t.Fatal(err)
	}
	const figure = "<thin:provisioned unit='bytes'>300</thin:provisioned>"
	before, after, found := strings.Cut(live, figure)
	if !found {
		t.Fatalf("no %s in\n%s", figure, live)
	}
	if len(rec.docs) != 1 || rec.docs[0] != before+after {
		t.Errorf("validated %q\nwant %q", rec.docs, before+after)
	}
	if err := realCodec(t).ValidatePool(context.Background(), live); err != nil {
		t.Errorf("thin pool XML refused: %v\n%s", err, live)
	}
}
