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
	want := []string{"dir", "fs", "netfs", "logical", "mpath"}
	if !slices.Equal(supported, want) {
		t.Errorf("pool-capabilities supported types = %v, want %v (in libvirt's order)", supported, want)
	}
	if len(caps.Pools) != 14 {
		t.Errorf("pool-capabilities lists %d pool types, want libvirt's 14", len(caps.Pools))
	}
}
