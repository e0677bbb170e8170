package backende2e_test

import (
	"encoding/xml"
	"slices"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestPoolCapabilitiesSupported checks that pool-capabilities marks exactly
// the pool types this daemon serves as supported.
func TestPoolCapabilitiesSupported(t *testing.T) {
	d := startDaemon(t, testkit.DaemonOptions{})
	out := virshOK(t, d, "pool-capabilities")
	var caps struct {
		XMLName xml.Name `xml:"storagepoolCapabilities"`
		Pools   []struct {
			Type      string `xml:"type,attr"`
			Supported string `xml:"supported,attr"`
		} `xml:"pool"`
	}
	if err := xml.Unmarshal([]byte(out), &caps); err != nil {
		t.Fatalf("pool-capabilities: %v\n%s", err, out)
	}
	var supported []string
	for _, p := range caps.Pools {
		if p.Supported == "yes" {
			supported = append(supported, p.Type)
		}
	}
	want := []string{"dir", "fs", "netfs", "logical", "disk", "iscsi", "scsi", "mpath", "rbd"}
	if !slices.Equal(supported, want) {
		t.Errorf("pool-capabilities supported types = %v, want %v (in libvirt's order)", supported, want)
	}
	if len(caps.Pools) != 14 {
		t.Errorf("pool-capabilities lists %d pool types, want libvirt's 14", len(caps.Pools))
	}
}

// TestConnectCapabilitiesTypes checks virConnectGetCapabilities of the
// storage driver (`virsh capabilities`): libvirt 9.0 lists the backends it
// registered, in registration order (dir, fs, netfs, logical, iscsi, scsi,
// mpath, disk on the anchor); we serve the same ones, in that order.
func TestConnectCapabilitiesTypes(t *testing.T) {
	d := startDaemon(t, testkit.DaemonOptions{})
	out := virshOK(t, d, "capabilities")
	var caps struct {
		XMLName xml.Name `xml:"capabilities"`
		Enums   []struct {
			Name   string   `xml:"name,attr"`
			Values []string `xml:"value"`
		} `xml:"pool>enum"`
	}
	if err := xml.Unmarshal([]byte(out), &caps); err != nil {
		t.Fatalf("capabilities: %v\n%s", err, out)
	}
	if len(caps.Enums) != 1 || caps.Enums[0].Name != "type" {
		t.Fatalf("capabilities: want one <pool><enum name='type'>, got:\n%s", out)
	}
	if want := []string{"dir", "fs", "netfs", "logical", "iscsi", "scsi", "mpath", "disk", "rbd"}; !slices.Equal(caps.Enums[0].Values, want) {
		t.Errorf("capabilities pool types = %v, want %v", caps.Enums[0].Values, want)
	}
}
