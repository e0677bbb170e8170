package e2e_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestZZDump(t *testing.T) {
	if os.Getenv("E2E_DUMP") == "" {
		t.Skip()
	}
	a := testkit.StartAnchor(t)
	a.CleanupPools("e2e")
	t.Cleanup(func() { a.CleanupPools("e2e") })
	ref := diffSide{a, poolBase(t, "a")}
	for _, step := range diffBaseSetup {
		if out, errOut, code := ref.run(t, nil, step); code != 0 {
			t.Fatalf("setup %v: rc=%d %s %s", step, code, out, errOut)
		}
	}
	f, _ := os.Create("/tmp/e2e-ref-dump.txt")
	defer f.Close()
	for _, c := range diffCases {
		for _, step := range c.setup {
			ref.run(t, c.files, step)
		}
		ro, re, rc := ref.run(t, c.files, c.args)
		for _, step := range c.cleanup {
			ref.run(t, nil, step)
		}
		fmt.Fprintf(f, "=== %s: virsh %s\nrc=%d\n%s%s\n", c.name, strings.Join(c.args, " "), rc, normalize(ro, ref.base, c.poolSizes), normalize(re, ref.base, c.poolSizes))
	}
}
