package xmldef_test

import (
	"reflect"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestParsePoolValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give string
		want func(d *domain.PoolDef) bool
	}{
		{
			name: "logical VG defaults to the pool name, target follows it",
			give: "<pool type='logical'><name>vg9</name><source><device path='/dev/sdb'/></source></pool>",
			want: func(d *domain.PoolDef) bool {
				return d.Source.Name == "vg9" && d.Target.Path == "/dev/vg9" && d.Source.Format == "lvm2"
			},
		},
		{
			name: "logical name from the source name",
			give: "<pool type='logical'><source><name>HostVG</name></source></pool>",
			want: func(d *domain.PoolDef) bool { return d.Name == "HostVG" && d.Target.Path == "/dev/HostVG" },
		},
		{
			name: "permissions",
			give: "<pool type='dir'><name>p</name><target><path>/p</path><permissions><mode>755</mode><owner> 107 </owner><group>-1</group><label>l</label></permissions></target></pool>",
			want: func(d *domain.PoolDef) bool {
				return d.Target.Perms == domain.Perms{Mode: 0o755, Owner: 107, Group: -1, Label: "l"}
			},
		},
		{
			name: "uid (uid_t)-1 is unset",
			give: "<pool type='dir'><name>p</name><target><path>/p</path><permissions><owner>4294967295</owner><group>4294967294</group></permissions></target></pool>",
			want: func(d *domain.PoolDef) bool { return d.Target.Perms.Owner == -1 && d.Target.Perms.Group == 4294967294 },
		},
		{
			name: "no permissions is unset, not zero",
			give: "<pool type='dir'><name>p</name><target><path>/p</path></target></pool>",
			want: func(d *domain.PoolDef) bool { return d.Target.Perms == domain.UnsetPerms() },
		},
		{
			name: "relative target path is accepted and sanitized",
			give: "<pool type='dir'><name>relp</name><target><path>rel//x/</path></target></pool>",
			want: func(d *domain.PoolDef) bool { return d.Target.Path == "rel/x" },
		},
		{
			name: "mount options only for fs and netfs",
			give: "<pool type='dir' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>p</name><target><path>/p</path></target><fs:mount_opts><fs:option name='ro'/></fs:mount_opts></pool>",
			want: func(d *domain.PoolDef) bool { return d.MountOpts == nil },
		},
		{
			name: "mount options",
			give: "<pool type='fs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>p</name><source><device path='/dev/x'/><format type='xfs'/></source><target><path>/p</path></target><fs:mount_opts><fs:option name='ro'/><fs:option name='noatime'/></fs:mount_opts></pool>",
			want: func(d *domain.PoolDef) bool {
				return reflect.DeepEqual(d.MountOpts, []string{"ro", "noatime"}) && d.Source.Format == "xfs"
			},
		},
		{
			name: "unknown elements are dropped without validate",
			give: "<pool type='dir'><name>a</name><bogus/><target><path>/tmp/x</path></target></pool>",
			want: func(d *domain.PoolDef) bool { return d.Name == "a" },
		},
		{
			name: "protocol ver is kept as given (9.0 does not check it)",
			give: "<pool type='netfs'><name>a</name><source><host name='h'/><dir path='/x'/><protocol ver='x'/></source><target><path>/tmp/x</path></target></pool>",
			want: func(d *domain.PoolDef) bool { return d.Source.ProtocolVer == "x" && d.Source.Format == "auto" },
		},
		{
			name: "undashed uuid",
			give: "<pool type='mpath'><name>m</name><uuid>9b910f363a4b427fb43e0f97928ee1f1</uuid><target><path>/dev/mapper</path></target></pool>",
			want: func(d *domain.PoolDef) bool { return d.UUID.String() == "9b910f36-3a4b-427f-b43e-0f97928ee1f1" },
		},
	}
	c := xmldef.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := c.ParsePool(tt.give, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(d) {
				t.Errorf("unexpected definition %+v", d)
			}
		})
	}
}

func TestParsePoolGeneratesUUID(t *testing.T) {
	t.Parallel()
	c := xmldef.New()
	const doc = "<pool type='dir'><name>p</name><target><path>/p</path></target></pool>"
	a, err := c.ParsePool(doc, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.ParsePool(doc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.UUID.IsZero() || a.UUID == b.UUID {
		t.Errorf("want fresh uuids, got %s and %s", a.UUID, b.UUID)
	}
}

// TestOutputReadableByLibvirtxml checks that Go clients using libvirtxml read
// our documents to the values we meant.
func TestOutputReadableByLibvirtxml(t *testing.T) {
	t.Parallel()
	c := xmldef.New()
	def, err := c.ParsePool("<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>n</name><source><host name='h' port='2049'/><dir path='/e'/><format type='nfs'/></source><target><path>/m</path><permissions><mode>0750</mode><owner>5</owner></permissions></target><fs:mount_opts><fs:option name='vers=4'/></fs:mount_opts></pool>", 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.FormatPool(def, &domain.PoolStats{Capacity: 10, Allocation: 4, Available: 6})
	if err != nil {
		t.Fatal(err)
	}
	var p libvirtxml.StoragePool
	if err := p.Unmarshal(out); err != nil {
		t.Fatalf("libvirtxml: %v\n%s", err, out)
	}
	if p.Type != "netfs" || p.Name != "n" || p.UUID != def.UUID.String() || p.Capacity.Value != 10 ||
		p.Available.Value != 6 || p.Source.Host[0].Port != "2049" || p.Source.Dir.Path != "/e" ||
		p.Target.Permissions.Mode != "0750" || p.Target.Permissions.Owner != "5" ||
		p.FSCommandline == nil || p.FSCommandline.Options[0].Name != "vers=4" {
		t.Errorf("libvirtxml read %+v from\n%s", p, out)
	}

	vol, err := c.ParseVol("<volume><name>v</name><capacity unit='M'>1</capacity><target><format type='qcow2'/></target><backingStore><path>/b</path><format type='raw'/></backingStore></volume>", dirPool, 0)
	if err != nil {
		t.Fatal(err)
	}
	vout, err := c.FormatVol(dirPool, vol)
	if err != nil {
		t.Fatal(err)
	}
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(vout); err != nil {
		t.Fatalf("libvirtxml: %v\n%s", err, vout)
	}
	if v.Name != "v" || v.Capacity.Value != 1<<20 || v.Target.Format.Type != "qcow2" || v.BackingStore.Path != "/b" {
		t.Errorf("libvirtxml read %+v from\n%s", v, vout)
	}
}

// The parsers build a DOM with encoding/xml first, which costs about 350 bytes
// an element however short: the worst measured input, "<a/>" repeated inside
// <pool>, allocates 87 bytes per input byte at 16 KB and 93 at 160 KB (fuzzing
// reached 69); a small document stays under 7 KB. The bound is twice that, so
// it trips on an input-per-element copy or a size taken from an attribute,
// not on encoding/xml's own appetite.
const (
	xmlAllocPerByte = 192
	xmlAllocSlack   = 32 << 10
)

func checkXMLAlloc(t *testing.T, what, doc string, parse func()) {
	t.Helper()
	n := testkit.AllocatedBytes(parse)
	if limit := xmlAllocPerByte*uint64(len(doc)) + xmlAllocSlack; n > limit {
		t.Fatalf("%s of %d bytes allocated %d, bound %d", what, len(doc), n, limit)
	}
}

func FuzzParsePool(f *testing.F) {
	f.Add("<pool type='dir'><name>a</name><target><path>/x</path></target></pool>", uint32(0))
	f.Add("<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>n</name><source><host name='h' port='1'/><dir path='/e'/></source><target><path>/m</path></target><fs:mount_opts><fs:option name='x'/></fs:mount_opts></pool>", uint32(1))
	f.Add("<pool type='logical'><source><name>v</name><device path='/d'><freeExtent start='1' end='2'/></device></source></pool>", uint32(0))
	f.Add("<pool type='dir'>\n<name>x</name>", uint32(0))
	f.Add("<poolstate><pool type='dir'><name>a</name><target><path>/x</path></target></pool></poolstate>", uint32(0))
	f.Add("<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'><name>r</name><source><host name='m' port='3300'/><name>p</name><auth type='ceph' username='u'><secret uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87'/></auth></source><refresh><volume allocation='default'/></refresh><rbd:config_opts><rbd:option name='a' value='b'/></rbd:config_opts></pool>", uint32(0))
	c := xmldef.New()
	f.Fuzz(func(t *testing.T, doc string, flags uint32) {
		var def *domain.PoolDef
		var err error
		checkXMLAlloc(t, "ParsePool", doc, func() { def, err = c.ParsePool(doc, flags) })
		if err == nil {
			if _, err := c.FormatPool(def, nil); err != nil {
				t.Fatal(err)
			}
		}
		checkXMLAlloc(t, "ParsePoolStatus", doc, func() { _, _ = c.ParsePoolStatus(doc) })
		checkXMLAlloc(t, "ParsePoolSource", doc, func() { _, _ = c.ParsePoolSource(domain.PoolNetFS, doc) })
	})
}

func FuzzParseVol(f *testing.F) {
	f.Add("<volume><name>v</name><capacity unit='G'>1</capacity></volume>")
	f.Add("<volume type='file'><name>v</name><capacity>1</capacity><allocation unit='KiB'>0</allocation><target><format type='qcow2'/><compat>1.1</compat><clusterSize unit='K'>64</clusterSize><features><lazy_refcounts/></features><permissions><mode>0600</mode><owner>1</owner></permissions></target><backingStore><path>/b</path></backingStore></volume>")
	f.Add("<volume><name>v</name><capacity unit='E'>100</capacity></volume>")
	f.Add("<volume><name>v</name><capacity>1</capacity><target><format type='raw'/><encryption format='luks' engine='qemu'><secret type='passphrase' usage='/a&amp;b'/><cipher name='aes' size='256' mode='cbc' hash='sha256'/><ivgen name='essiv' hash='sha256'/></encryption></target></volume>")
	c := xmldef.New()
	f.Fuzz(func(t *testing.T, doc string) {
		for _, pool := range []*domain.PoolDef{dirPool, {Type: domain.PoolDisk}, {Type: domain.PoolLogical}} {
			var vol *domain.VolDef
			var err error
			checkXMLAlloc(t, "ParseVol", doc, func() { vol, err = c.ParseVol(doc, pool, 0) })
			if err != nil {
				continue
			}
			if _, err := c.FormatVol(pool, vol); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestRBDXMLWithLibvirtxml checks an rbd pool both ways with libvirtxml: it
// reads our auth, refresh and config_opts, and what it writes parses back to
// the same definition.
func TestRBDXMLWithLibvirtxml(t *testing.T) {
	t.Parallel()
	c := xmldef.New()
	def, err := c.ParsePool("<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'><name>r</name><source><host name='mon1' port='3300'/><host name='mon2'/><name>vms</name><auth type='ceph' username='libvirt'><secret usage='ceph client.libvirt'/></auth></source><refresh><volume allocation='default'/></refresh><rbd:config_opts><rbd:option name='rbd_cache' value='false'/></rbd:config_opts></pool>", 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.FormatPool(def, nil)
	if err != nil {
		t.Fatal(err)
	}
	var p libvirtxml.StoragePool
	if err := p.Unmarshal(out); err != nil {
		t.Fatalf("libvirtxml: %v\n%s", err, out)
	}
	if p.Type != "rbd" || p.Source.Name != "vms" || len(p.Source.Host) != 2 || p.Source.Host[0].Port != "3300" ||
		p.Source.Auth == nil || p.Source.Auth.Type != "ceph" || p.Source.Auth.Username != "libvirt" ||
		p.Source.Auth.Secret == nil || p.Source.Auth.Secret.Usage != "ceph client.libvirt" ||
		p.Refresh == nil || p.Refresh.Volume.Allocation != "default" ||
		p.RBDCommandline == nil || len(p.RBDCommandline.Options) != 1 || p.RBDCommandline.Options[0].Value != "false" {
		t.Errorf("libvirtxml read %+v from\n%s", p, out)
	}
	p.Source.Auth.Secret = &libvirtxml.StoragePoolSourceAuthSecret{UUID: "2ec115d7-3a88-3ceb-bc12-0ac909a6fd87"}
	theirs, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.ParsePool(theirs, 0)
	if err != nil {
		t.Fatalf("libvirtxml's document does not parse: %v\n%s", err, theirs)
	}
	want := def.Clone()
	want.Source.Auth.SecretUsage, want.Source.Auth.SecretUUID = "", "2ec115d7-3a88-3ceb-bc12-0ac909a6fd87"
	x, _ := c.FormatPool(want, nil)
	y, _ := c.FormatPool(again, nil)
	if x != y {
		t.Errorf("libvirtxml round trip changed the pool:\n%s\nwant\n%s", y, x)
	}
}
