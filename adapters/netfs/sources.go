package netfs

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"
	"strings"
)

// exportLine is libvirt's regex over a showmount line: the export path
// (which may hold spaces), blanks, then the client list as one word.
var exportLine = regexp.MustCompile(`^(/.*\S) +\S+$`)

// ParseShowmount returns the export paths in `showmount --no-headers
// --exports HOST` output, in order. Lines that do not look like an export
// (a header, a message) are skipped, as libvirt's regex does.
func ParseShowmount(out []byte) []string {
	var dirs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		m := exportLine.FindStringSubmatch(strings.TrimRight(sc.Text(), "\r"))
		if m != nil {
			dirs = append(dirs, m[1])
		}
	}
	return dirs
}

// glusterCLI is the part of `gluster --xml volume info all` we read.
type glusterCLI struct {
	XMLName xml.Name `xml:"cliOutput"`
	OpRet   int      `xml:"opRet"`
	Volumes []struct {
		Name string `xml:"name"`
	} `xml:"volInfo>volumes>volume"`
}

// ParseGlusterVolumes returns the volume names in the gluster CLI's XML
// answer. A non-zero opRet (the CLI's own failure) gives no volumes.
func ParseGlusterVolumes(out []byte) ([]string, error) {
	var doc glusterCLI
	if err := xml.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("netfs: malformed gluster output: %w", err)
	}
	if doc.OpRet != 0 {
		return nil, nil
	}
	names := make([]string, 0, len(doc.Volumes))
	for _, v := range doc.Volumes {
		name := strings.TrimSpace(v.Name)
		if name == "" {
			return nil, fmt.Errorf("netfs: failed to extract gluster volume name")
		}
		names = append(names, name)
	}
	return names, nil
}
