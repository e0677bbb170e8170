package domain

// JobKind is one of the long volume jobs whose progress the daemon reports
// (libvirt reports none): they hold their volume for as long as they copy,
// write or stream its data.
type JobKind int

// Job kinds. The numbers are not on any wire; the names are (metrics labels,
// admin typed parameters, log fields) and must not change.
const (
	// JobBuild creates a volume (virStorageVolCreateXML).
	JobBuild JobKind = iota + 1
	// JobClone creates a volume as a copy of another (virStorageVolCreateXMLFrom).
	JobClone
	// JobWipe overwrites a volume's data (virStorageVolWipe[Pattern]).
	JobWipe
	// JobUpload streams data into a volume (virStorageVolUpload).
	JobUpload
	// JobDownload streams a volume's data out (virStorageVolDownload).
	JobDownload
)

// JobKinds lists every kind, in the order of the constants.
var JobKinds = []JobKind{JobBuild, JobClone, JobWipe, JobUpload, JobDownload}

var jobKindNames = [...]string{JobBuild: "build", JobClone: "clone", JobWipe: "wipe", JobUpload: "upload", JobDownload: "download"}

// String returns the kind's name: build, clone, wipe, upload or download.
func (k JobKind) String() string {
	if k > 0 && int(k) < len(jobKindNames) {
		return jobKindNames[k]
	}
	return "unknown"
}

// StreamTotal is how many bytes an upload or download of a volume of size
// bytes moves: from offset to the end, or length bytes when that ends sooner
// (length 0 means to the end, as in libvirt). Neither kind of stream goes past
// the volume's end.
func StreamTotal(offset, length, size uint64) uint64 {
	if offset >= size {
		return 0
	}
	rest := size - offset
	if length > 0 && length < rest {
		return length
	}
	return rest
}
