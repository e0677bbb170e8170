package xmldef_test

import (
	"errors"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// Every wantErr text, code and domain below is what libvirtd 9.0 answered for
// the same input (python-libvirt against tools/anchor.sh), except where the
// name says (src) or the comment says otherwise.

func checkErr(t *testing.T, err error, wantErr string, wantCode, wantDomain int32) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", wantErr)
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v is not a domain error", err)
	}
	if err.Error() != wantErr {
		t.Errorf("message\n got %q\nwant %q", err.Error(), wantErr)
	}
	if de.Kind.Code() != wantCode {
		t.Errorf("code got %d want %d", de.Kind.Code(), wantCode)
	}
	if de.ErrorDomain() != wantDomain {
		t.Errorf("domain got %d want %d", de.ErrorDomain(), wantDomain)
	}
}

const tgt = "<target><path>/tmp/x</path></target>"

func iscsiSrc(extra string) string {
	return "<pool type='iscsi'><name>zzbad</name><source><host name='h'/><device path='iqn.x'/>" + extra + "</source><target><path>/dev/disk/by-path</path></target></pool>"
}

func scsiSrc(src string) string {
	return "<pool type='scsi'><name>zzbad</name><source>" + src + "</source><target><path>/dev/disk/by-path</path></target></pool>"
}

// rbdAuth is an rbd pool whose source carries auth.
func rbdAuth(auth string) string {
	return "<pool type='rbd'><name>p</name><source><host name='h'/><name>rbd</name>" + auth + "</source></pool>"
}

// rbdNS is an rbd pool with the rbd namespace declared and extra elements.
func rbdNS(extra string) string {
	return "<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'><name>p</name><source><host name='h'/><host name='h2' port='1'/><name>rbd</name></source>" + extra + "</pool>"
}

func TestParsePoolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       string
		giveFlags  uint32
		wantErr    string
		wantCode   int32
		wantDomain int32
	}{
		{name: "truncated", give: "<pool type='dir'>\n<name>x</name>", wantErr: "(storage_pool_definition):2: Premature end of data in tag pool line 1\n<name>x</name>\n--------------^", wantCode: 35, wantDomain: 18},
		{name: "tag mismatch", give: "<pool type='dir'><name>x</name>\n<target>\n<path>/tmp/x</path>\n</target>\n</poo>", wantErr: "(storage_pool_definition):5: Opening and ending tag mismatch: pool line 1 and poo\n</poo>\n------^", wantCode: 35, wantDomain: 18},
		{name: "not xml", give: "hello", wantErr: "(storage_pool_definition):1: Start tag expected, '<' not found\nhello\n^", wantCode: 35, wantDomain: 18},
		{name: "empty", give: "", wantErr: "(storage_pool_definition):1: Document is empty\n(null)\n^", wantCode: 35, wantDomain: 18},
		{name: "bad type", give: "<pool type='bogus'><name>x</name></pool>", wantErr: "XML error: Invalid value for attribute 'type' in element 'pool': 'bogus'.", wantCode: 27, wantDomain: 5},
		{name: "no type", give: "<pool><name>x</name></pool>", wantErr: "XML error: Missing required attribute 'type' in element 'pool'", wantCode: 27, wantDomain: 5},
		{name: "no name", give: "<pool type='dir'>" + tgt + "</pool>", wantErr: "XML error: missing pool source name element", wantCode: 27, wantDomain: 18},
		{name: "empty name", give: "<pool type='dir'><name></name>" + tgt + "</pool>", wantErr: "XML error: missing pool source name element", wantCode: 27, wantDomain: 18},
		{name: "slash", give: "<pool type='dir'><name>a/b</name>" + tgt + "</pool>", wantErr: "XML error: name a/b cannot contain '/'", wantCode: 27, wantDomain: 18},
		{name: "bad uuid", give: "<pool type='dir'><name>a</name><uuid>zz</uuid>" + tgt + "</pool>", wantErr: "XML error: malformed uuid element", wantCode: 27, wantDomain: 18},
		{name: "no target", give: "<pool type='dir'><name>a</name></pool>", wantErr: "XML error: missing storage pool target path", wantCode: 27, wantDomain: 18},
		{name: "fs without device", give: "<pool type='fs'><name>a</name>" + tgt + "</pool>", wantErr: "XML error: missing storage pool source device name", wantCode: 27, wantDomain: 18},
		{name: "netfs without host", give: "<pool type='netfs'><name>a</name><source><dir path='/x'/></source>" + tgt + "</pool>", wantErr: "XML error: missing storage pool source host name", wantCode: 27, wantDomain: 18},
		// iscsi and scsi sources (python-libvirt against tools/anchor.sh).
		{name: "auth type unknown", give: iscsiSrc("<auth type='bogus' username='u'><secret usage='x'/></auth>"), wantErr: "unsupported configuration: unknown auth type 'bogus'", wantCode: 67, wantDomain: 18},
		{name: "auth without type", give: iscsiSrc("<auth username='u'><secret usage='x'/></auth>"), wantErr: "unsupported configuration: storage pool missing auth type", wantCode: 67, wantDomain: 18},
		{name: "auth without username", give: iscsiSrc("<auth type='chap'><secret usage='x'/></auth>"), wantErr: "XML error: missing username for auth", wantCode: 27, wantDomain: 18},
		{name: "auth without secret", give: iscsiSrc("<auth type='chap' username='u'/>"), wantErr: "XML error: Missing <secret> element in auth", wantCode: 27, wantDomain: 18},
		{name: "secret without uuid or usage", give: iscsiSrc("<auth type='chap' username='u'><secret/></auth>"), wantErr: "XML error: missing secret uuid or usage attribute", wantCode: 27, wantDomain: 0},
		{name: "secret with uuid and usage", give: iscsiSrc("<auth type='chap' username='u'><secret uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87' usage='x'/></auth>"), wantErr: "XML error: either secret uuid or usage expected", wantCode: 27, wantDomain: 0},
		{name: "secret uuid malformed", give: iscsiSrc("<auth type='chap' username='u'><secret uuid='nope'/></auth>"), wantErr: "XML error: invalid secret uuid 'nope'", wantCode: 27, wantDomain: 0},
		{name: "scsi without adapter", give: scsiSrc(""), wantErr: "XML error: missing storage pool source adapter", wantCode: 27, wantDomain: 18},
		{name: "adapter without type or name", give: scsiSrc("<adapter/>"), wantErr: "XML error: missing storage pool source adapter", wantCode: 27, wantDomain: 18},
		{name: "adapter type unknown", give: scsiSrc("<adapter type='bogus' name='host1'/>"), wantErr: "XML error: Invalid value for attribute 'type' in element 'adapter': 'bogus'.", wantCode: 27, wantDomain: 5},
		{name: "scsi_host without name or parent", give: scsiSrc("<adapter type='scsi_host'/>"), wantErr: "XML error: Either 'name' or 'parent' must be specified for the 'scsi_host' adapter", wantCode: 27, wantDomain: 18},
		{name: "scsi_host with name and parent", give: scsiSrc("<adapter type='scsi_host' name='host1'><parentaddr unique_id='1'><address bus='0x00' slot='0x1f'/></parentaddr></adapter>"), wantErr: "XML error: Both 'name' and 'parent' cannot be specified for the 'scsi_host' adapter", wantCode: 27, wantDomain: 18},
		{name: "parentaddr without unique_id", give: scsiSrc("<adapter type='scsi_host'><parentaddr><address bus='0x05'/></parentaddr></adapter>"), wantErr: "XML error: Missing or invalid scsi adapter 'unique_id' value", wantCode: 27, wantDomain: 18},
		{name: "parentaddr without address", give: scsiSrc("<adapter type='scsi_host'><parentaddr unique_id='1'/></adapter>"), wantErr: "XML error: Missing scsi_host PCI address element", wantCode: 27, wantDomain: 18},
		{name: "address not a number", give: scsiSrc("<adapter type='scsi_host'><parentaddr unique_id='1'><address bus='x'/></parentaddr></adapter>"), wantErr: "XML error: Invalid value for attribute 'bus' in element 'address': 'x'. Expected non-negative integer value", wantCode: 27, wantDomain: 5},
		{name: "address slot out of range", give: scsiSrc("<adapter type='scsi_host'><parentaddr unique_id='1'><address slot='0x20'/></parentaddr></adapter>"), wantErr: "XML error: Invalid PCI address slot='0x20', must be <= 0x1F", wantCode: 27, wantDomain: 0},
		{name: "fc_host without wwns", give: scsiSrc("<adapter type='fc_host'/>"), wantErr: "XML error: 'wwnn' and 'wwpn' must be specified for adapter type 'fchost'", wantCode: 27, wantDomain: 18},
		{name: "fc_host malformed wwn", give: scsiSrc("<adapter type='fc_host' wwnn='2000' wwpn='1000'/>"), wantErr: "internal error: Malformed wwn: 2000", wantCode: 1, wantDomain: 0},
		{name: "fc_host managed maybe", give: scsiSrc("<adapter type='fc_host' managed='maybe' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/>"), wantErr: "XML error: Invalid value for attribute 'managed' in element 'adapter': 'maybe'.", wantCode: 27, wantDomain: 5},
		{name: "fc_host parent_wwnn alone", give: scsiSrc("<adapter type='fc_host' parent_wwnn='20000000c9831b4c' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/>"), wantErr: "XML error: when providing parent_wwnn='20000000c9831b4c', the parent_wwpn must also be provided", wantCode: 27, wantDomain: 18},
		{name: "fc_host parent_wwpn alone", give: scsiSrc("<adapter type='fc_host' parent_wwpn='20000000c9831b4c' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/>"), wantErr: "XML error: when providing parent_wwpn='20000000c9831b4c', the parent_wwnn must also be provided", wantCode: 27, wantDomain: 18},
		{name: "fc_host malformed parent wwn", give: scsiSrc("<adapter type='fc_host' parent_wwnn='2000' parent_wwpn='1000' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/>"), wantErr: "internal error: Malformed wwn: 2000", wantCode: 1, wantDomain: 0},
		{name: "netfs without dir", give: "<pool type='netfs'><name>a</name><source><host name='h'/></source>" + tgt + "</pool>", wantErr: "XML error: missing storage pool source path", wantCode: 27, wantDomain: 18},
		{name: "bad mode", give: "<pool type='dir'><name>a</name><target><path>/tmp/x</path><permissions><mode>999</mode></permissions></target></pool>", wantErr: "XML error: malformed octal mode", wantCode: 27, wantDomain: 18},
		{name: "bad owner", give: "<pool type='dir'><name>a</name><target><path>/tmp/x</path><permissions><owner>abc</owner></permissions></target></pool>", wantErr: "XML error: malformed owner element", wantCode: 27, wantDomain: 18},
		{name: "fractional owner", give: "<pool type='dir'><name>a</name><target><path>/tmp/x</path><permissions><owner> 1.9 </owner></permissions></target></pool>", wantErr: "XML error: malformed owner element", wantCode: 27, wantDomain: 18},
		{name: "bad cow", give: "<pool type='dir'><name>a</name><features><cow state='maybe'/></features>" + tgt + "</pool>", wantErr: "XML error: Invalid value for attribute 'state' in element 'cow': 'maybe'.", wantCode: 27, wantDomain: 5},
		{name: "cow on logical", give: "<pool type='logical'><name>a</name><features><cow state='yes'/></features></pool>", wantErr: "this function is not supported by the connection driver: cow feature may only be used for 'fs' and 'dir' pools", wantCode: 3, wantDomain: 18},
		{name: "bad source format", give: "<pool type='fs'><name>a</name><source><device path='/dev/x'/><format type='zzz'/></source>" + tgt + "</pool>", wantErr: "unsupported configuration: unknown pool format type zzz", wantCode: 67, wantDomain: 18},
		{name: "bad port", give: "<pool type='netfs'><name>a</name><source><host name='h' port='abc'/><dir path='/x'/></source>" + tgt + "</pool>", wantErr: "XML error: Invalid value for attribute 'port' in element 'host': 'abc'. Expected integer value", wantCode: 27, wantDomain: 5},
		{name: "host without name", give: "<pool type='netfs'><name>a</name><source><host/><dir path='/x'/></source>" + tgt + "</pool>", wantErr: "XML error: missing storage pool host name", wantCode: 27, wantDomain: 18},
		{name: "device without path", give: "<pool type='fs'><name>a</name><source><device/></source>" + tgt + "</pool>", wantErr: "XML error: missing storage pool source device path", wantCode: 27, wantDomain: 18},
		{name: "bad part_separator", give: "<pool type='fs'><name>a</name><source><device path='/dev/x' part_separator='x'/></source>" + tgt + "</pool>", wantErr: "XML error: Invalid value for attribute 'part_separator' in element 'device': 'x'.", wantCode: 27, wantDomain: 5},
		{name: "protocol ver on cifs", give: "<pool type='netfs'><name>a</name><source><host name='h'/><dir path='/x'/><format type='cifs'/><protocol ver='3'/></source>" + tgt + "</pool>", wantErr: "unsupported configuration: storage pool protocol ver unsupported for pool type 'cifs'", wantCode: 67, wantDomain: 18},
		{name: "wrong root", give: "<volume><name>a</name></volume>", wantErr: "XML error: expecting root element of 'pool', not 'volume'", wantCode: 27, wantDomain: 5},
		{name: "scsi without adapter (obs, semantics 1.2)", give: "<pool type='scsi'><name>a</name>" + tgt + "</pool>", wantErr: "XML error: missing storage pool source adapter", wantCode: 27, wantDomain: 18},
		{name: "rbd without name (src)", give: "<pool type='rbd'><name>a</name><source><host name='h'/></source></pool>", wantErr: "XML error: element 'name' is mandatory for RBD pool", wantCode: 27, wantDomain: 18},
		{name: "empty mount option (src)", give: "<pool type='fs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>a</name><source><device path='/dev/x'/></source>" + tgt + "<fs:mount_opts><fs:option/></fs:mount_opts></pool>", wantErr: "XML error: no fs mount option name specified", wantCode: 27, wantDomain: 18},
		{name: "auth without username", give: rbdAuth("<auth type='ceph'><secret uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87'/></auth>"), wantErr: "XML error: missing username for auth", wantCode: 27, wantDomain: 18},
		{name: "auth empty username", give: rbdAuth("<auth type='ceph' username=''><secret usage='x'/></auth>"), wantErr: "XML error: missing username for auth", wantCode: 27, wantDomain: 18},
		{name: "auth unknown type", give: rbdAuth("<auth type='foo' username='a'><secret uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87'/></auth>"), wantErr: "unsupported configuration: unknown auth type 'foo'", wantCode: 67, wantDomain: 18},
		{name: "auth without secret", give: rbdAuth("<auth type='ceph' username='a'></auth>"), wantErr: "XML error: Missing <secret> element in auth", wantCode: 27, wantDomain: 18},
		{name: "secret without reference", give: rbdAuth("<auth type='ceph' username='a'><secret/></auth>"), wantErr: "XML error: missing secret uuid or usage attribute", wantCode: 27, wantDomain: 0},
		{name: "secret bad uuid", give: rbdAuth("<auth type='ceph' username='a'><secret uuid='zz'/></auth>"), wantErr: "XML error: invalid secret uuid 'zz'", wantCode: 27, wantDomain: 0},
		{name: "secret uuid and usage", give: rbdAuth("<auth type='ceph' username='a'><secret uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87' usage='x'/></auth>"), wantErr: "XML error: either secret uuid or usage expected", wantCode: 27, wantDomain: 0},
		{name: "auth without type", give: rbdAuth("<auth username='a'><secret usage='x'/></auth>"), wantErr: "unsupported configuration: storage pool missing auth type", wantCode: 67, wantDomain: 18},
		{name: "rbd without host", give: "<pool type='rbd'><name>p</name><source><name>rbd</name></source></pool>", wantErr: "XML error: missing storage pool source host name", wantCode: 27, wantDomain: 18},
		{name: "unknown refresh allocation", give: rbdNS("<refresh><volume allocation='bogus'/></refresh>"), wantErr: "unsupported configuration: unknown storage pool volume refresh allocation type bogus", wantCode: 67, wantDomain: 18},
		{name: "rbd option without name", give: rbdNS("<rbd:config_opts><rbd:option value='x'/></rbd:config_opts>"), wantErr: "XML error: no rbd option name specified", wantCode: 27, wantDomain: 18},
		{name: "rbd option empty name", give: rbdNS("<rbd:config_opts><rbd:option name='' value='x'/></rbd:config_opts>"), wantErr: "XML error: empty rbd option name specified", wantCode: 27, wantDomain: 18},
		{name: "rbd option without value", give: rbdNS("<rbd:config_opts><rbd:option name='a'/></rbd:config_opts>"), wantErr: "XML error: no rbd option value specified for name 'a'", wantCode: 27, wantDomain: 18},
		{name: "rbd option empty value", give: rbdNS("<rbd:config_opts><rbd:option name='a' value=''/></rbd:config_opts>"), wantErr: "XML error: empty rbd option value specified for name 'a'", wantCode: 27, wantDomain: 18},
	}
	c := xmldef.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			def, err := c.ParsePool(tt.give, tt.giveFlags)
			if err == nil {
				t.Fatalf("parsed %+v, want an error", def)
			}
			checkErr(t, err, tt.wantErr, tt.wantCode, tt.wantDomain)
		})
	}
}

func TestParseVolErrors(t *testing.T) {
	t.Parallel()
	v := func(name, inner string) string { return "<volume><name>" + name + "</name>" + inner + "</volume>" }
	enc := func(e string) string {
		return v("a", "<capacity>1</capacity><target><format type='raw'/>"+e+"</target>")
	}
	const sec = "<secret type='passphrase' uuid='11111111-2222-3333-4444-555555555555'/>"
	tests := []struct {
		name       string
		give       string
		wantErr    string
		wantCode   int32
		wantDomain int32
	}{
		{name: "no name", give: "<volume><capacity>1</capacity></volume>", wantErr: "XML error: missing volume name element", wantCode: 27, wantDomain: 18},
		{name: "negative capacity", give: v("a", "<capacity>-5</capacity>"), wantErr: "XML error: malformed capacity element", wantCode: 27, wantDomain: 18},
		{name: "suffixed capacity", give: v("a", "<capacity>5M</capacity>"), wantErr: "XML error: malformed capacity element", wantCode: 27, wantDomain: 18},
		// libvirt raises these two in VIR_FROM_NONE (0), which domain.Error
		// cannot express yet (0 reads as storage).
		{name: "unknown unit", give: v("a", "<capacity unit='QQ'>5</capacity>"), wantErr: "invalid argument: unknown suffix 'QQ'", wantCode: 8, wantDomain: 18},
		{name: "overflow", give: v("a", "<capacity unit='E'>100</capacity>"), wantErr: "numerical overflow: value too large: 100E", wantCode: 82, wantDomain: 18},
		{name: "overflow without unit", give: v("a", "<capacity>9223372036854775808</capacity>"), wantErr: "numerical overflow: value too large: 9223372036854775808", wantCode: 82, wantDomain: 18},
		{name: "beyond 64 bits", give: v("a", "<capacity>99999999999999999999999</capacity>"), wantErr: "XML error: malformed capacity element", wantCode: 27, wantDomain: 18},
		{name: "bad allocation", give: v("a", "<capacity>1</capacity><allocation>x</allocation>"), wantErr: "XML error: malformed capacity element", wantCode: 27, wantDomain: 18},
		{name: "bad format", give: v("a", "<capacity>1</capacity><target><format type='bogus'/></target>"), wantErr: "unsupported configuration: unknown volume format type bogus", wantCode: 67, wantDomain: 18},
		{name: "format none", give: v("a", "<capacity>1</capacity><target><format type='none'/></target>"), wantErr: "unsupported configuration: unknown volume format type none", wantCode: 67, wantDomain: 18},
		{name: "bad mode", give: v("a", "<capacity>1</capacity><target><permissions><mode>8</mode></permissions></target>"), wantErr: "XML error: malformed octal mode", wantCode: 27, wantDomain: 18},
		{name: "bad compat", give: v("a", "<capacity>1</capacity><target><format type='qcow2'/><compat>x</compat></target>"), wantErr: "XML error: forbidden characters in 'compat' attribute", wantCode: 27, wantDomain: 18},
		{name: "bad feature", give: v("a", "<capacity>1</capacity><target><format type='qcow2'/><features><foo/></features></target>"), wantErr: "unsupported configuration: unsupported feature foo", wantCode: 67, wantDomain: 18},
		{name: "bad cluster unit", give: v("a", "<capacity>1</capacity><target><format type='qcow2'/><clusterSize unit='QQ'>1</clusterSize></target>"), wantErr: "invalid argument: unknown suffix 'QQ'", wantCode: 8, wantDomain: 18},
		{name: "bad cluster value", give: v("a", "<capacity>1</capacity><target><format type='qcow2'/><clusterSize>x</clusterSize></target>"), wantErr: "XML error: Invalid value 'x' for element or attribute './target/clusterSize'", wantCode: 27, wantDomain: 5},
		{name: "bad type", give: "<volume type='zz'><name>bt</name><capacity>1</capacity></volume>", wantErr: "unsupported configuration: unknown volume type 'zz'", wantCode: 67, wantDomain: 18},
		{name: "bad backing format", give: v("a", "<capacity>1</capacity><target><format type='qcow2'/></target><backingStore><path>/x</path><format type='zz'/></backingStore>"), wantErr: "unsupported configuration: unknown volume format type zz", wantCode: 67, wantDomain: 18},
		{name: "wrong root", give: "<pool><name>x</name></pool>", wantErr: "XML error: expecting root element of 'volume', not 'pool'", wantCode: 27, wantDomain: 5},
		{name: "truncated", give: "<volume>\n<name>x</name>", wantErr: "(storage_volume_definition):2: Premature end of data in tag volume line 1\n<name>x</name>\n--------------^", wantCode: 35, wantDomain: 18},
		{name: "bad encryption", give: v("a", "<capacity>1</capacity><target><encryption format='zz'/></target>"), wantErr: "unsupported configuration: unknown volume encryption format type zz", wantCode: 67, wantDomain: 18},
		// <encryption> errors as libvirtd 9.0 gives them (measured).
		{name: "encryption without format", give: enc("<encryption>" + sec + "</encryption>"), wantErr: "XML error: unknown volume encryption format", wantCode: 27, wantDomain: 18},
		{name: "bad engine", give: enc("<encryption format='luks' engine='bogus'>" + sec + "</encryption>"), wantErr: "XML error: Invalid value for attribute 'engine' in element 'encryption': 'bogus'.", wantCode: 27, wantDomain: 5},
		{name: "engine empty", give: enc("<encryption format='luks' engine=''>" + sec + "</encryption>"), wantErr: "XML error: Invalid value for attribute 'engine' in element 'encryption': ''.", wantCode: 27, wantDomain: 5},
		{name: "engine default", give: enc("<encryption format='luks' engine='default'>" + sec + "</encryption>"), wantErr: "XML error: Invalid value for attribute 'engine' in element 'encryption': 'default'.", wantCode: 27, wantDomain: 5},
		{name: "secret without type", give: enc("<encryption format='luks'><secret uuid='11111111-2222-3333-4444-555555555555'/></encryption>"), wantErr: "XML error: unknown volume encryption secret type", wantCode: 27, wantDomain: 18},
		{name: "secret type bogus", give: enc("<encryption format='luks'><secret type='bogus' uuid='11111111-2222-3333-4444-555555555555'/></encryption>"), wantErr: "unsupported configuration: unknown volume encryption secret type bogus", wantCode: 67, wantDomain: 18},
		{name: "secret without uuid or usage", give: enc("<encryption format='luks'><secret type='passphrase'/></encryption>"), wantErr: "XML error: missing secret uuid or usage attribute", wantCode: 27, wantDomain: 0},
		{name: "secret with both", give: enc("<encryption format='luks'><secret type='passphrase' uuid='11111111-2222-3333-4444-555555555555' usage='x'/></encryption>"), wantErr: "XML error: either secret uuid or usage expected", wantCode: 27, wantDomain: 0},
		{name: "secret bad uuid", give: enc("<encryption format='luks'><secret type='passphrase' uuid='zz'/></encryption>"), wantErr: "XML error: invalid secret uuid 'zz'", wantCode: 27, wantDomain: 0},
		{name: "secret empty uuid", give: enc("<encryption format='luks'><secret type='passphrase' uuid=''/></encryption>"), wantErr: "XML error: invalid secret uuid ''", wantCode: 27, wantDomain: 0},
		{name: "cipher without name", give: enc("<encryption format='luks'>" + sec + "<cipher size='256'/></encryption>"), wantErr: "XML error: cipher info missing 'name' attribute", wantCode: 27, wantDomain: 18},
		{name: "cipher without size", give: enc("<encryption format='luks'>" + sec + "<cipher name='aes'/></encryption>"), wantErr: "XML error: Missing required attribute 'size' in element 'cipher'", wantCode: 27, wantDomain: 5},
		{name: "cipher bad size", give: enc("<encryption format='luks'>" + sec + "<cipher name='aes' size='x'/></encryption>"), wantErr: "XML error: Invalid value for attribute 'size' in element 'cipher': 'x'. Expected non-negative integer value", wantCode: 27, wantDomain: 5},
		{name: "cipher negative size", give: enc("<encryption format='luks'>" + sec + "<cipher name='aes' size='-1'/></encryption>"), wantErr: "XML error: Invalid value for attribute 'size' in element 'cipher': '-1'. Expected non-negative integer value", wantCode: 27, wantDomain: 5},
		{name: "ivgen without cipher", give: enc("<encryption format='luks'>" + sec + "<ivgen name='plain64'/></encryption>"), wantErr: "XML error: ivgen element found, but cipher is missing", wantCode: 27, wantDomain: 18},
		{name: "ivgen without name", give: enc("<encryption format='luks'>" + sec + "<cipher name='aes' size='256'/><ivgen hash='sha256'/></encryption>"), wantErr: "XML error: missing ivgen info name string", wantCode: 27, wantDomain: 18},
	}
	c := xmldef.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			def, err := c.ParseVol(tt.give, dirPool, 0)
			if err == nil {
				t.Fatalf("parsed %+v, want an error", def)
			}
			checkErr(t, err, tt.wantErr, tt.wantCode, tt.wantDomain)
		})
	}
}

func TestParseVolSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		give           string
		wantCapacity   uint64
		wantAllocation uint64
		wantHasAlloc   bool
		wantHasCap     bool
	}{
		{name: "k", give: "<capacity unit='k'>1</capacity>", wantCapacity: 1024, wantAllocation: 1024, wantHasCap: true},
		{name: "KB and b", give: "<capacity unit='KB'>1</capacity><allocation unit='b'>0</allocation>", wantCapacity: 1000, wantHasAlloc: true, wantHasCap: true},
		{name: "bytes", give: "<capacity unit='bytes'>7</capacity><allocation unit='bytes'>3</allocation>", wantCapacity: 7, wantAllocation: 3, wantHasAlloc: true, wantHasCap: true},
		{name: "KiB lower case", give: "<capacity unit='KiB'>2</capacity><allocation unit='kib'>1</allocation>", wantCapacity: 2048, wantAllocation: 1024, wantHasAlloc: true, wantHasCap: true},
		{name: "mb", give: "<capacity unit='mb'>1</capacity>", wantCapacity: 1000000, wantAllocation: 1000000, wantHasCap: true},
		{name: "G", give: "<capacity unit='G'>3</capacity>", wantCapacity: 3 << 30, wantAllocation: 3 << 30, wantHasCap: true},
		{name: "TB", give: "<capacity unit='TB'>2</capacity>", wantCapacity: 2e12, wantAllocation: 2e12, wantHasCap: true},
		{name: "P", give: "<capacity unit='P'>1</capacity>", wantCapacity: 1 << 50, wantAllocation: 1 << 50, wantHasCap: true},
		{name: "E at the limit", give: "<capacity unit='EiB'>7</capacity>", wantCapacity: 7 << 60, wantAllocation: 7 << 60, wantHasCap: true},
		{name: "leading blanks", give: "<capacity> 5</capacity>", wantCapacity: 5, wantAllocation: 5, wantHasCap: true},
		{name: "zero", give: "<capacity>0</capacity>", wantHasCap: true},
		{name: "no capacity (create-from)", give: ""},
	}
	c := xmldef.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			def, err := c.ParseVol("<volume><name>v</name>"+tt.give+"</volume>", dirPool, 0)
			if err != nil {
				t.Fatal(err)
			}
			if def.Capacity != tt.wantCapacity || def.Allocation != tt.wantAllocation ||
				def.HasAllocation != tt.wantHasAlloc || def.HasCapacity != tt.wantHasCap {
				t.Errorf("got cap %d alloc %d hasAlloc %v hasCap %v", def.Capacity, def.Allocation, def.HasAllocation, def.HasCapacity)
			}
			if def.Target.Format != "" || def.Target.Perms != domain.UnsetPerms() {
				t.Errorf("defaults: format %q perms %+v", def.Target.Format, def.Target.Perms)
			}
		})
	}
}
