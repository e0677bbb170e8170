package e2e_test

import (
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

const pythonEvents = `
import libvirt, os, threading, time
libvirt.virEventRegisterDefaultImpl()
uri = os.environ['URI']
c = libvirt.open(uri)
print("type", c.getType())
print("pools", sorted(p.name() for p in c.listAllStoragePools(0)))
events = []
def lc(conn, pool, event, detail, opaque):
    events.append("lifecycle %s %d %d" % (pool.name(), event, detail))
def rf(conn, pool, opaque):
    events.append("refresh %s" % pool.name())
c.storagePoolEventRegisterAny(None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, lc, None)
c.storagePoolEventRegisterAny(None, libvirt.VIR_STORAGE_POOL_EVENT_ID_REFRESH, rf, None)
def loop():
    while True:
        libvirt.virEventRunDefaultImpl()
threading.Thread(target=loop, daemon=True).start()
c2 = libvirt.open(uri)
p = c2.storagePoolDefineXML("<pool type='dir'><name>e2epy</name><target><path>%s</path></target></pool>" % os.environ['TARGET'], 0)
p.build(0); p.create(0); p.refresh(0); p.destroy(); p.delete(0); p.undefine()
deadline = time.time() + 10
while len(events) < 7 and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.3)
for e in events: print(e)
c2.close()
c.close()
`

// TestPythonLibvirt opens a connection with libvirt-python, lists pools and
// receives lifecycle and refresh events through libvirt's event loop.
func TestPythonLibvirt(t *testing.T) {
	t.Parallel()
	testkit.RequirePythonLibvirt(t)
	d := startDaemon(t, testkit.DaemonOptions{})
	base := poolBase(t, "y")
	ok(t, d, "pool-define-as", "e2e-other", "dir", "--target", filepath.Join(base, "o"))
	script := "import os\nos.environ['TARGET'] = " + `"` + filepath.Join(base, "py") + `"` + "\n" + pythonEvents
	out, errOut, code := d.Python(script)
	// DEFINED 0, CREATED 4 (build), STARTED 2, refresh, STOPPED 3, DELETED 5, UNDEFINED 1: as libvirtd 9.0 sends them.
	want := "type storage\npools ['e2e-other']\n" +
		"lifecycle e2epy 0 0\nlifecycle e2epy 4 0\nlifecycle e2epy 2 0\nrefresh e2epy\n" +
		"lifecycle e2epy 3 0\nlifecycle e2epy 5 0\nlifecycle e2epy 1 0\n"
	if code != 0 || out != want {
		t.Errorf("python3-libvirt: rc=%d\nstdout:\n%s\nstderr:\n%s\nwant stdout:\n%s", code, out, errOut, want)
	}
}
