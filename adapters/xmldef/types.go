package xmldef

import "github.com/virtstoraged-go/virtstoraged/domain"

// Which <source> parts a pool type requires and prints (libvirt's
// VIR_STORAGE_POOL_SOURCE_* option flags).
const (
	srcHost = 1 << iota
	srcDevice
	srcDir
	srcAdapter
	srcName
	srcInitiatorIQN
	srcNetwork
)

// typeInfo is what libvirt's conf layer knows about one pool type.
type typeInfo struct {
	flags         int
	poolFormats   []string // source formats, index = libvirt enum value
	defaultPool   string
	volFormats    []string // volume formats offered in capabilities
	volParse      []string // volume formats accepted when parsing
	defaultVol    string
	hasVolOptions bool
}

var fileVolFormats = []string{"none", "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop", "cow", "qcow", "qcow2", "qed", "vmdk"}

// fileVolParse drops "none": libvirt maps it to "no format" and rejects it.
var fileVolParse = fileVolFormats[1:]

var diskVolFormats = []string{"none", "linux", "fat16", "fat32", "linux-swap", "linux-lvm", "linux-raid", "extended"}

var typeInfos = map[domain.PoolType]typeInfo{
	domain.PoolDir: {volFormats: fileVolFormats, volParse: fileVolParse, defaultVol: "raw", hasVolOptions: true},
	domain.PoolFS: {
		flags:       srcDevice,
		poolFormats: []string{"auto", "ext2", "ext3", "ext4", "ufs", "iso9660", "udf", "gfs", "gfs2", "vfat", "hfs+", "xfs", "ocfs2", "vmfs"},
		defaultPool: "auto",
		volFormats:  fileVolFormats, volParse: fileVolParse, defaultVol: "raw", hasVolOptions: true,
	},
	domain.PoolNetFS: {
		flags:       srcHost | srcDir,
		poolFormats: []string{"auto", "nfs", "glusterfs", "cifs"},
		defaultPool: "auto",
		volFormats:  fileVolFormats, volParse: fileVolParse, defaultVol: "raw", hasVolOptions: true,
	},
	domain.PoolLogical: {
		flags:       srcName | srcDevice,
		poolFormats: []string{"unknown", "lvm2"},
		defaultPool: "lvm2",
	},
	domain.PoolDisk: {
		flags:       srcDevice,
		poolFormats: []string{"unknown", "dos", "dvh", "gpt", "mac", "bsd", "pc98", "sun", "lvm2"},
		defaultPool: "unknown",
		volFormats:  diskVolFormats, volParse: diskVolFormats, defaultVol: "none", hasVolOptions: true,
	},
	domain.PoolISCSI:       {flags: srcHost | srcDevice | srcInitiatorIQN},
	domain.PoolISCSIDirect: {flags: srcHost | srcDevice | srcNetwork | srcInitiatorIQN},
	domain.PoolSCSI:        {flags: srcAdapter},
	domain.PoolMpath:       {},
	// rbd parses every file format but its capabilities list none.
	domain.PoolRBD:      {flags: srcHost | srcNetwork | srcName, volParse: fileVolParse, defaultVol: "raw", hasVolOptions: true},
	domain.PoolSheepdog: {flags: srcHost | srcNetwork | srcName},
	domain.PoolGluster: {
		flags:      srcHost | srcNetwork | srcName | srcDir,
		volFormats: fileVolFormats, volParse: fileVolParse, defaultVol: "raw", hasVolOptions: true,
	},
	domain.PoolZFS:      {flags: srcName | srcDevice},
	domain.PoolVstorage: {flags: srcName, volFormats: fileVolFormats, volParse: fileVolParse, defaultVol: "raw", hasVolOptions: true},
}

// registrationOrder is the order in which libvirt's storage driver registers
// its backends; virConnectGetCapabilities lists pool types in this order.
var registrationOrder = []domain.PoolType{
	domain.PoolDir, domain.PoolFS, domain.PoolNetFS, domain.PoolLogical, domain.PoolISCSI,
	domain.PoolISCSIDirect, domain.PoolSCSI, domain.PoolMpath, domain.PoolDisk, domain.PoolRBD,
	domain.PoolSheepdog, domain.PoolGluster, domain.PoolZFS, domain.PoolVstorage,
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// DefaultVolFormat returns the volume format libvirt gives a volume of a pool
// of type t when its XML names none ("" for pool types without formats).
func DefaultVolFormat(t domain.PoolType) string { return typeInfos[t].defaultVol }

// DefaultSourceFormat returns the <source><format> a pool of type t gets
// when its XML names none ("" for pool types without source formats).
func DefaultSourceFormat(t domain.PoolType) string { return typeInfos[t].defaultPool }
