package xmldef

import (
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// allPoolTypes are the pool types libvirt 9.0's pool-capabilities lists, in
// enum order.
var allPoolTypes = []domain.PoolType{
	domain.PoolDir, domain.PoolFS, domain.PoolNetFS, domain.PoolLogical, domain.PoolDisk,
	domain.PoolISCSI, domain.PoolISCSIDirect, domain.PoolSCSI, domain.PoolMpath, domain.PoolRBD,
	domain.PoolSheepdog, domain.PoolGluster, domain.PoolZFS, domain.PoolVstorage,
}

// FormatPoolCapabilities answers virConnectGetStoragePoolCapabilities: every
// pool type libvirt knows, supported='yes' for the ones served.
func (c *Codec) FormatPoolCapabilities(types []domain.PoolType) (string, error) {
	served := make(map[domain.PoolType]bool, len(types))
	for _, t := range types {
		served[t] = true
	}
	var w writer
	w.open("<storagepoolCapabilities>")
	for _, t := range allPoolTypes {
		supported := "no"
		if served[t] {
			supported = "yes"
		}
		info := typeInfos[t]
		w.open("<pool type='%s' supported='%s'>", t, supported)
		if info.poolFormats != nil {
			w.open("<poolOptions>")
			w.line("<defaultFormat type='%s'/>", info.defaultPool)
			w.open("<enum name='sourceFormatType'>")
			for _, f := range info.poolFormats {
				w.line("<value>%s</value>", esc(f))
			}
			w.close("enum")
			w.close("poolOptions")
		}
		if info.hasVolOptions {
			w.open("<volOptions>")
			w.line("<defaultFormat type='%s'/>", info.defaultVol)
			w.open("<enum name='targetFormatType'>")
			for _, f := range info.volFormats {
				w.line("<value>%s</value>", esc(f))
			}
			w.close("enum")
			w.close("volOptions")
		}
		w.close("pool")
	}
	w.close("storagepoolCapabilities")
	return w.String(), nil
}

// FormatCapabilities answers virConnectGetCapabilities of the storage driver:
// the served pool types, in libvirt's backend registration order.
func (c *Codec) FormatCapabilities(types []domain.PoolType) (string, error) {
	served := make(map[domain.PoolType]bool, len(types))
	for _, t := range types {
		served[t] = true
	}
	var w writer
	w.line("<capabilities>")
	w.line("")
	w.indent = 2
	w.open("<pool>")
	w.open("<enum name='type'>")
	for _, t := range registrationOrder {
		if served[t] {
			w.line("<value>%s</value>", t)
		}
	}
	w.close("enum")
	w.close("pool")
	w.indent = 0
	w.line("")
	w.line("</capabilities>")
	return w.String(), nil
}
