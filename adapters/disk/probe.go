package disk

import (
	"strings"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
)

// Verdict is what a probe of the device found, against the pool's format
// (libvirt's virStorageBackendBLKIDProbeResult and its parted counterpart).
type Verdict int

// Probe verdicts.
const (
	// Empty: no label and no file system.
	Empty Verdict = iota
	// Match: the device carries the pool's label.
	Match
	// Different: it carries something else.
	Different
	// AskParted: blkid cannot tell (dvh, pc98 and bsd labels), parted must.
	AskParted
	// Unreadable: parted's answer could not be read (libvirt's "unable to
	// determine" and "unknown partition type" cases, and a failing parted).
	Unreadable
)

// BlkidVerdict judges blkid's probe as libvirt's virStorageBackendBLKIDFindEmpty
// does: a file system signature first (never a disk label's name, so always
// Different), then the partition table type. libblkid names dvh labels "sgi"
// and pc98 labels "dos", and does not find parted's bsd labels, so for those
// three libvirt asks parted instead.
func BlkidVerdict(p blockdev.Probe, format string) Verdict {
	if p.Type != "" {
		if p.Type == format {
			return Match
		}
		return Different
	}
	switch format {
	case "dvh", "pc98", "bsd":
		return AskParted
	}
	switch p.PTType {
	case "":
		return Empty
	case format:
		return Match
	}
	return Different
}

// diskFormats are the pool's label formats, libvirt's virStoragePoolFormatDisk.
var diskFormats = []string{"unknown", "dos", "dvh", "gpt", "mac", "bsd", "pc98", "sun", "lvm2"}

// PartedVerdict reads `parted DEV print --script` as libvirt's
// virStorageBackendPARTEDFindLabel does. failed is whether parted exited
// non-zero; out and errOut are its output.
func PartedVerdict(failed bool, out, errOut, format string) (Verdict, string) {
	if failed {
		if strings.Contains(out, "unrecognised disk label") || strings.Contains(errOut, "unrecognised disk label") {
			return Empty, ""
		}
		return Unreadable, "Error checking for disk label, failed to get disk partition information"
	}
	_, rest, ok := strings.Cut(out, "Partition Table: ")
	label, _, nl := strings.Cut(rest, "\n")
	if !ok || !nl {
		return Unreadable, "Unable to determine Partition Type, requires build --overwrite"
	}
	if label == "msdos" {
		label = "dos"
	}
	known := false
	for _, f := range diskFormats {
		known = known || f == label
	}
	if !known {
		return Unreadable, "Unknown Partition Type, requires build --overwrite"
	}
	if label == format {
		return Match, ""
	}
	return Different, ""
}

// blkidError words a verdict as libvirt's blkid path does, for a build
// (writeLabel: the device must be empty) or a start (it must hold the label).
func blkidError(v Verdict, dev, format string, writeLabel bool) error {
	switch v {
	case Empty:
		if writeLabel {
			return nil
		}
		return domain.Errorf(domain.KindStorageProbeFailed, "Device '%s' is unrecognized, requires build", dev)
	case Match:
		if writeLabel {
			return domain.Errorf(domain.KindStoragePoolBuilt, "Device '%s' already formatted using '%s'", dev, format)
		}
		return nil
	}
	if writeLabel {
		return domain.Errorf(domain.KindStoragePoolBuilt, "Format of device '%s' does not match the expected format '%s', forced overwrite is necessary", dev, format)
	}
	return domain.Errorf(domain.KindOperationInvalid, "Format of device '%s' does not match the expected format '%s'", dev, format)
}

// partedError words a verdict as libvirt's parted path does.
func partedError(v Verdict, why, format string, writeLabel bool) error {
	switch v {
	case Empty:
		if writeLabel {
			return nil
		}
		return domain.Errorf(domain.KindOperationFailed, "Unrecognized disk label found, requires build")
	case Match:
		if writeLabel {
			return domain.Errorf(domain.KindOperationInvalid, "Disk label already formatted using '%s'", format)
		}
		return nil
	case Different:
		return domain.Errorf(domain.KindOperationFailed, "Known, but different label format present, requires build --overwrite")
	}
	return domain.Errorf(domain.KindOperationFailed, "%s", why)
}
