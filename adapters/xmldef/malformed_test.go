package xmldef_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
)

// TestMalformedPoolXMLMatchesLibvirt replays documents libvirtd 9.0 was given
// (testdata/libvirt/malformed-pool.json holds each input and its answer:
// "OK name" or "ERR code domain message").
func TestMalformedPoolXMLMatchesLibvirt(t *testing.T) {
	t.Parallel()
	var cases [][2]string
	if err := json.Unmarshal([]byte(readLibvirt(t, "malformed-pool.json")), &cases); err != nil {
		t.Fatal(err)
	}
	c := xmldef.New()
	for i, tc := range cases {
		give, want := tc[0], tc[1]
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			def, err := c.ParsePool(give, 0)
			var got string
			if err != nil {
				got = "ERR " + err.Error()
				want = "ERR " + strings.SplitN(want, " ", 4)[3]
			} else {
				got = "OK " + def.Name
			}
			if got != want {
				t.Errorf("input %q\n got %q\nwant %q", give, got, want)
			}
		})
	}
}
