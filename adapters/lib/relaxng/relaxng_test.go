package relaxng_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/relaxng"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestMessages(t *testing.T) {
	tests := []struct {
		name     string
		giveErr  string
		wantMsgs []string
	}{
		{
			name: "element messages and the verdict",
			giveErr: "-:1: element pool: Relax-NG validity error : Expecting an element target, got nothing\n" +
				"-:1: element bogus: Relax-NG validity error : Invalid sequence in interleave\n" +
				"-:1: element name: Relax-NG validity error : Element pool failed to validate content\n" +
				"- fails to validate\n",
			wantMsgs: []string{"Expecting an element target, got nothing", "Invalid sequence in interleave", "Element pool failed to validate content"},
		},
		{
			name: "a message without a node has no location",
			giveErr: "Relax-NG validity error : Extra element uuid in interleave\n" +
				"-:1: element pool: Relax-NG validity error : Invalid sequence in interleave\n" +
				"- fails to validate\n",
			wantMsgs: []string{"Extra element uuid in interleave", "Invalid sequence in interleave"},
		},
		{
			name:     "a value with a newline continues its message",
			giveErr:  "-:3: element name: Relax-NG validity error : Type x doesn't allow value 'a\nb'\n- fails to validate\n",
			wantMsgs: []string{"Type x doesn't allow value 'a\nb'"},
		},
		{name: "nothing but the verdict", giveErr: "- fails to validate\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := relaxng.Messages(tt.giveErr); !reflect.DeepEqual(got, tt.wantMsgs) {
				t.Errorf("Messages = %q, want %q", got, tt.wantMsgs)
			}
		})
	}
}

// The command line, the document on standard input, and exit status 3 turned
// into libvirt's error: code 92 in the XML domain, with the libvirt path of
// the schema whatever directory our copy is in.
func TestValidateCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "schemas")
	r := testkit.NewFakeRunner(t)
	r.Expect("xmllint", "--noout", "--nonet", "--relaxng", dir+"/storagevol.rng", "-").Exit = 0
	c := r.Expect("xmllint", "--noout", "--nonet", "--relaxng", dir+"/storagepool.rng", "-")
	c.Exit = 3
	c.Stderr = "-:1: element pool: Relax-NG validity error : Element pool failed to validate content\n- fails to validate\n"
	v := relaxng.New(r, relaxng.Dir(dir))
	t.Cleanup(func() { _ = v.Close() })

	if err := v.Validate(context.Background(), relaxng.Vol, "<volume/>"); err != nil {
		t.Fatalf("valid document: %v", err)
	}
	err := v.Validate(context.Background(), relaxng.Pool, "<pool/>")
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("Validate = %v, want a domain error", err)
	}
	want := "XML document failed to validate against schema: Unable to validate doc against /usr/share/libvirt/schemas/storagepool.rng\nElement pool failed to validate content\n"
	if de.Kind.Code() != 92 || de.ErrorDomain() != domain.FromXML || de.Error() != want {
		t.Errorf("got code %d domain %d %q, want 92 in domain %d %q", de.Kind.Code(), de.ErrorDomain(), de.Error(), domain.FromXML, want)
	}
	cmds := r.Commands()
	if string(cmds[0].Stdin) != "<volume/>" || string(cmds[1].Stdin) != "<pool/>" {
		t.Errorf("stdin %q, %q: want the documents", cmds[0].Stdin, cmds[1].Stdin)
	}
	// xmllint resolves the includes next to the schema it was given.
	for _, f := range []string{"storagepool.rng", "storagevol.rng", "storagecommon.rng", "basictypes.rng"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("schema file: %v", err)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close: %v, want the directory gone", err)
	}
}

// A host without xmllint gets an error that says what to install, not a
// schema verdict.
func TestValidateWithoutXmllint(t *testing.T) {
	v := relaxng.New(osexec.New(nil), relaxng.Dir(t.TempDir())).WithProgram("virtstoraged-test-no-such-xmllint")
	t.Cleanup(func() { _ = v.Close() })
	err := v.Validate(context.Background(), relaxng.Pool, "<pool type='dir'/>")
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindOperationUnsupported {
		t.Fatalf("Validate = %v, want KindOperationUnsupported", err)
	}
	want := "Operation not supported: cannot validate against /usr/share/libvirt/schemas/storagepool.rng: virtstoraged-test-no-such-xmllint (Debian package libxml2-utils) is not installed"
	if de.Error() != want {
		t.Errorf("got %q\nwant %q", de.Error(), want)
	}
}

// Real xmllint on the embedded schemas gives libvirtd 9.0's texts (measured
// with virsh pool-define --validate and vol-create --validate; the
// differential test in internal/e2e compares with libvirtd itself).
func TestValidateWithXmllint(t *testing.T) {
	testkit.RequireTool(t, relaxng.Program)
	v := relaxng.New(osexec.New(nil), relaxng.Dir(filepath.Join(t.TempDir(), "s")))
	t.Cleanup(func() { _ = v.Close() })
	tests := []struct {
		name     string
		giveRNG  relaxng.Schema
		giveDoc  string
		wantMsgs []string
	}{
		{name: "valid pool", giveRNG: relaxng.Pool, giveDoc: "<pool type='dir'><name>a</name><target><path>/a</path></target></pool>"},
		{name: "valid volume", giveRNG: relaxng.Vol, giveDoc: "<volume><name>v</name><capacity unit='M'>1</capacity><target><format type='qcow2'/></target></volume>"},
		{name: "unknown element", giveRNG: relaxng.Pool, giveDoc: "<pool type='dir'><name>a</name><bogus/><target><path>/a</path></target></pool>",
			wantMsgs: []string{"Expecting an element target, got nothing", "Invalid sequence in interleave", "Element pool failed to validate content"}},
		{name: "bad pool type", giveRNG: relaxng.Pool, giveDoc: "<pool type='bogus'><name>a</name><target><path>/a</path></target></pool>",
			wantMsgs: []string{"Element pool failed to validate content"}},
		{name: "missing name", giveRNG: relaxng.Pool, giveDoc: "<pool type='dir'><target><path>/a</path></target></pool>",
			wantMsgs: []string{"Expecting an element name, got nothing", "Invalid sequence in interleave", "Element pool failed to validate content"}},
		{name: "bad mode", giveRNG: relaxng.Pool, giveDoc: "<pool type='dir'><name>a</name><target><path>/a</path><permissions><mode>abc</mode></permissions></target></pool>",
			wantMsgs: []string{"Extra element permissions in interleave", "Element target failed to validate content", "Invalid sequence in interleave", "Element pool failed to validate content"}},
		{name: "bad capacity unit", giveRNG: relaxng.Vol, giveDoc: "<volume><name>v</name><capacity unit='QQ'>1024</capacity><target><format type='qcow2'/></target></volume>",
			wantMsgs: []string{"Extra element capacity in interleave", "Invalid sequence in interleave", "Element volume failed to validate content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(context.Background(), tt.giveRNG, tt.giveDoc)
			if tt.wantMsgs == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			want := relaxng.SchemaError(relaxng.LibvirtSchemaDir+"/"+string(tt.giveRNG), tt.wantMsgs).Error()
			if err == nil || err.Error() != want {
				t.Errorf("Validate = %v\nwant %s", err, want)
			}
		})
	}
}
