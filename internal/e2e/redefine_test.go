package e2e_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestRedefineWithAnotherType defines a dir pool, builds it, and redefines it
// as an fs pool of the same name and uuid, which libvirt 9.0 accepts (checked
// against libvirtd): the next pool-start is the fs backend's, a mount that
// fails on the missing device, where the dir backend would have started the
// pool. The same when the new definition is a config file changed behind the
// daemon's back and read again on SIGHUP.
func TestRedefineWithAnotherType(t *testing.T) {
	t.Parallel()
	n := listenNotify(t)
	d := startDaemon(t, testkit.DaemonOptions{Env: []string{"NOTIFY_SOCKET=" + n.path}})
	n.waitFor(t, "READY=1")
	base := poolBase(t, "r")
	for _, via := range []string{"define", "sighup"} {
		// A device each: two fs pools over one would be a source conflict.
		name, target, dev := "e2e-retype-"+via, filepath.Join(base, via), "/dev/e2e-missing-"+via
		ok(t, d, "pool-define-as", name, "dir", "--target", target)
		ok(t, d, "pool-build", name)
		uuid := strings.TrimSpace(ok(t, d, "pool-uuid", name))
		xml := fmt.Sprintf("<pool type='fs'><name>%s</name><uuid>%s</uuid><source><device path='%s'/></source>"+
			"<target><path>%s</path></target></pool>\n", name, uuid, dev, target)
		switch via {
		case "define":
			file := filepath.Join(base, name+".xml")
			writeFile(t, file, xml)
			ok(t, d, "pool-define", file)
		case "sighup":
			writeFile(t, filepath.Join(d.StorageDir(), name+".xml"), xml)
			if err := d.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			n.waitFor(t, "RELOADING=1")
			n.waitFor(t, "READY=1")
		}
		wantContains(t, d, []string{"pool-dumpxml", name}, "<pool type='fs'>", "<device path='"+dev+"'/>")
		wantErrContains(t, d, " -t auto "+dev+" "+target+") unexpected exit status", "pool-start", name)
		wantContains(t, d, []string{"pool-info", name}, "State:          inactive\n")
	}
}
