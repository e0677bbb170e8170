package e2e_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// apiEnv is what an API case works on, resolved on one daemon.
type apiEnv struct {
	l        *libvirt.Libvirt
	active   libvirt.StoragePool
	inactive libvirt.StoragePool
	vol      libvirt.StorageVol
	base     string
}

// apiCases reach what virsh cannot: flags virsh never sends, and lookups by
// key and UUID. Each returns the call's error (nil for success) and a result
// to compare.
var apiCases = []struct {
	name string
	call func(e apiEnv) (string, error)
}{
	{"pool refresh with flags 2", func(e apiEnv) (string, error) { return "", e.l.StoragePoolRefresh(e.active, 2) }},
	{"vol xml with flags 1", func(e apiEnv) (string, error) { return "", ignore(e.l.StorageVolGetXMLDesc(e.vol, 1)) }},
	{"pool delete zeroed", func(e apiEnv) (string, error) { return "", e.l.StoragePoolDelete(e.inactive, 1) }},
	{"vol delete zeroed", func(e apiEnv) (string, error) { return "", e.l.StorageVolDelete(e.vol, 1) }},
	{"vol delete with snapshots", func(e apiEnv) (string, error) { return "", e.l.StorageVolDelete(e.vol, 2) }},
	{"pool by unknown uuid", func(e apiEnv) (string, error) {
		_, err := e.l.StoragePoolLookupByUUID(libvirt.UUID{0x6a, 0x0c, 0xfa, 0x84, 0, 0, 0x40, 0, 0x80})
		return "", err
	}},
	{"vol by unknown name", func(e apiEnv) (string, error) {
		_, err := e.l.StorageVolLookupByName(e.active, "nosuch")
		return "", err
	}},
	{"vol by unknown key", func(e apiEnv) (string, error) { _, err := e.l.StorageVolLookupByKey("nosuch"); return "", err }},
	{"vol by unknown path", func(e apiEnv) (string, error) {
		_, err := e.l.StorageVolLookupByPath(e.base + "/pd/nosuch")
		return "", err
	}},
	{"vol by name in an inactive pool", func(e apiEnv) (string, error) {
		_, err := e.l.StorageVolLookupByName(e.inactive, "x")
		return "", err
	}},
	{"pool by target path", func(e apiEnv) (string, error) {
		p, err := e.l.StoragePoolLookupByTargetPath(e.base + "/pd")
		return p.Name, err
	}},
	{"pool by volume", func(e apiEnv) (string, error) {
		p, err := e.l.StoragePoolLookupByVolume(e.vol)
		return p.Name, err
	}},
	{"number of volumes", func(e apiEnv) (string, error) {
		n, err := e.l.StoragePoolNumOfVolumes(e.active)
		return fmt.Sprint(n), err
	}},
	{"number of volumes of an inactive pool", func(e apiEnv) (string, error) {
		n, err := e.l.StoragePoolNumOfVolumes(e.inactive)
		return fmt.Sprint(n), err
	}},
	{"find sources for dir", func(e apiEnv) (string, error) {
		return "", ignore(e.l.ConnectFindStoragePoolSources("dir", nil, 0))
	}},
	{"find sources for a bogus type", func(e apiEnv) (string, error) {
		return "", ignore(e.l.ConnectFindStoragePoolSources("bogus", nil, 0))
	}},
	{"vol create with an unknown flag", func(e apiEnv) (string, error) {
		_, err := e.l.StorageVolCreateXML(e.active, "<volume><name>f.img</name><capacity>1024</capacity></volume>", 64)
		return "", err
	}},
	{"wipe with an unknown algorithm", func(e apiEnv) (string, error) { return "", e.l.StorageVolWipePattern(e.vol, 99, 0) }},
	{"wipe with trim on a file", func(e apiEnv) (string, error) { return "", e.l.StorageVolWipePattern(e.vol, 9, 0) }},
	{"resize with an unknown flag", func(e apiEnv) (string, error) { return "", e.l.StorageVolResize(e.vol, 1<<30, 64) }},
	{"vol info flags 1", func(e apiEnv) (string, error) {
		typ, c, a, err := e.l.StorageVolGetInfoFlags(e.vol, 1)
		return fmt.Sprint(typ, c, a), err
	}},
	{"pool create with both build flags", func(e apiEnv) (string, error) { return "", e.l.StoragePoolCreate(e.inactive, 6) }},
	{"pool build with both overwrite flags", func(e apiEnv) (string, error) { return "", e.l.StoragePoolBuild(e.inactive, 12) }},
	{"pool build with an unknown flag", func(e apiEnv) (string, error) { return "", e.l.StoragePoolBuild(e.inactive, 1) }},
	{"pool xml with an unknown flag", func(e apiEnv) (string, error) { return "", ignore(e.l.StoragePoolGetXMLDesc(e.active, 2)) }},
	{"pool capabilities with flags", func(e apiEnv) (string, error) { return "", ignore(e.l.ConnectGetStoragePoolCapabilities(1)) }},
	{"1 MiB volume name", func(e apiEnv) (string, error) {
		_, err := e.l.StorageVolCreateXML(e.active, "<volume><name>"+strings.Repeat("n", 1<<20)+"</name><capacity>1024</capacity></volume>", 0)
		return "", err
	}},
	{"4 MiB pool name", func(e apiEnv) (string, error) {
		_, err := e.l.StoragePoolDefineXML("<pool type='dir'><name>"+strings.Repeat("p", 4<<20)+"</name><target><path>/tmp/x</path></target></pool>", 0)
		return "", err
	}},
	{"pool name with a newline", func(e apiEnv) (string, error) {
		_, err := e.l.StoragePoolDefineXML("<pool type='dir'><name>e2e\nq</name><target><path>"+e.base+"/q</path></target></pool>", 0)
		return "", err
	}},
	// The codes of --validate failures (92) and of what fails before the
	// schema is consulted; diff_test.go compares the texts through virsh.
	{"pool define validated, unknown element", func(e apiEnv) (string, error) {
		_, err := e.l.StoragePoolDefineXML("<pool type='dir'><name>e2ex</name><bogus/><target><path>"+e.base+"/x</path></target></pool>", 1)
		return "", err
	}},
	{"pool define validated, wrong root", func(e apiEnv) (string, error) {
		_, err := e.l.StoragePoolDefineXML("<volume><name>e2ex</name></volume>", 1)
		return "", err
	}},
	{"pool define validated, malformed", func(e apiEnv) (string, error) {
		_, err := e.l.StoragePoolDefineXML("<pool type='dir'><name>e2ex</name>", 1)
		return "", err
	}},
	{"vol create validated, bad attribute", func(e apiEnv) (string, error) {
		_, err := e.l.StorageVolCreateXML(e.active, "<volume type='weird'><name>vv.img</name><capacity>1024</capacity></volume>", 4)
		return "", err
	}},
	{"vol create from validated, missing name", func(e apiEnv) (string, error) {
		_, err := e.l.StorageVolCreateXMLFrom(e.active, "<volume><capacity>1024</capacity></volume>", e.vol, 4)
		return "", err
	}},
	{"set autostart on an inactive pool", func(e apiEnv) (string, error) {
		if err := e.l.StoragePoolSetAutostart(e.inactive, 1); err != nil {
			return "", err
		}
		return "", e.l.StoragePoolSetAutostart(e.inactive, 0)
	}},
}

// clip keeps a failure message readable when an error text is huge.
func clip(s string) string {
	if len(s) <= 600 {
		return s
	}
	return fmt.Sprintf("%s … %s (%d bytes)", s[:300], s[len(s)-200:], len(s))
}

func ignore[T any](_ T, err error) error { return err }

// apiOutcome renders a result for comparison: the error's code and message, or
// the result.
func apiOutcome(res string, err error, base string) string {
	var lerr libvirt.Error
	switch {
	case err == nil:
		return "ok " + strings.ReplaceAll(res, base, "<DIR>")
	case errors.As(err, &lerr):
		return fmt.Sprintf("error code=%d %s", lerr.Code, normalize(lerr.Message, base, false))
	default:
		return "transport error: " + err.Error()
	}
}

// TestDifferentialAPI calls the storage API with go-libvirt on both daemons and
// compares error codes and messages.
func TestDifferentialAPI(t *testing.T) {
	t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
	sides := bothDaemons(t, func(base string) [][]string {
		return [][]string{
			{"pool-define-as", "e2ed", "dir", "--target", base + "/pd"},
			{"pool-start", "e2ed", "--build"},
			{"vol-create-as", "e2ed", "r1.img", "1M"},
			{"pool-define-as", "e2ei", "dir", "--target", base + "/pi"},
		}
	})
	envs := make([]apiEnv, 2)
	for i, s := range sides {
		l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(s.sock), dialers.WithLocalTimeout(5*time.Second)))
		if err := l.ConnectToURI(libvirt.ConnectURI("storage:///system")); err != nil {
			t.Fatalf("go-libvirt connect to %s: %v", s.sock, err)
		}
		t.Cleanup(func() { _ = l.Disconnect() })
		e := apiEnv{l: l, base: s.base}
		var err error
		if e.active, err = l.StoragePoolLookupByName("e2ed"); err != nil {
			t.Fatal(err)
		}
		if e.inactive, err = l.StoragePoolLookupByName("e2ei"); err != nil {
			t.Fatal(err)
		}
		if e.vol, err = l.StorageVolLookupByName(e.active, "r1.img"); err != nil {
			t.Fatal(err)
		}
		envs[i] = e
	}
	for _, c := range apiCases {
		t.Run(c.name, func(t *testing.T) {
			var out [2]string
			for i, e := range envs {
				var res string
				err := withTimeout(t, c.name, func() error {
					var err error
					res, err = c.call(e)
					return err
				})
				out[i] = apiOutcome(res, err, e.base)
			}
			if out[0] != out[1] {
				t.Errorf("%s:\n libvirtd:      %s\n virtstoraged:  %s", c.name, clip(out[0]), clip(out[1]))
			}
		})
	}
}
