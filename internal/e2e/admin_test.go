package e2e_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestVirtAdmin drives the admin socket with virt-admin.
func TestVirtAdmin(t *testing.T) {
	t.Parallel()
	testkit.RequireTool(t, "virt-admin")
	d := startDaemon(t, testkit.DaemonOptions{})
	va := func(args ...string) string {
		t.Helper()
		out, errOut, code := d.VirtAdmin(args...)
		if code != 0 {
			t.Errorf("virt-admin %s: rc=%d stdout=%q stderr=%q", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	if out := va("srv-list"); !regexp.MustCompile(`(?m)^ +[0-9]+ +virtstoraged *$`).MatchString(out) ||
		!strings.HasPrefix(out, " Id   Name\n") {
		t.Errorf("srv-list:\n%s", out)
	}
	info := va("srv-threadpool-info", "virtstoraged")
	for _, k := range []string{"minWorkers     : ", "maxWorkers     : ", "nWorkers       : ", "freeWorkers    : ", "prioWorkers    : ", "jobQueueDepth  : "} {
		if !strings.Contains(info, k) {
			t.Errorf("srv-threadpool-info lacks %q:\n%s", k, info)
		}
	}
	va("srv-threadpool-set", "virtstoraged", "--max-workers", "10")
	if info := va("srv-threadpool-info", "virtstoraged"); !strings.Contains(info, "maxWorkers     : 10\n") {
		t.Errorf("after srv-threadpool-set --max-workers 10:\n%s", info)
	}

	// a client to look at: a virsh waiting for an event
	done := make(chan struct{})
	go func() {
		d.Virsh("pool-event", "--event", "lifecycle", "--timeout", "6")
		close(done)
	}()
	var id string
	deadline := time.Now().Add(5 * time.Second)
	for id == "" && time.Now().Before(deadline) {
		out := va("srv-clients-list", "virtstoraged")
		if !regexp.MustCompile(`^ Id +Transport +Connected since\n`).MatchString(out) {
			t.Errorf("srv-clients-list header:\n%s", out)
		}
		for _, line := range strings.Split(out, "\n")[2:] {
			if f := strings.Fields(line); len(f) >= 2 && f[1] == "unix" {
				id = f[0]
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if id == "" {
		t.Fatalf("srv-clients-list never showed the waiting virsh")
	}
	ci := va("client-info", "virtstoraged", id)
	for _, k := range []string{"id             : " + id + "\n", "transport      : unix\n", "readonly       : no\n", "unix_user_id   : ", "unix_process_id: "} {
		if !strings.Contains(ci, k) {
			t.Errorf("client-info lacks %q:\n%s", k, ci)
		}
	}
	if out := va("srv-clients-info", "virtstoraged"); !regexp.MustCompile(`nclients_max +: [0-9]+\nnclients +: [1-9]`).MatchString(out) {
		t.Errorf("srv-clients-info:\n%s", out)
	}
	va("client-disconnect", "virtstoraged", id)
	select {
	case <-done:
	case <-time.After(4 * time.Second):
		t.Errorf("the disconnected virsh did not return")
	}
	if _, errOut, code := d.VirtAdmin("client-disconnect", "virtstoraged", "99999"); code == 0 ||
		errOut != "error: Client not found: No client with matching ID '99999'\n" {
		t.Errorf("client-disconnect of a missing client: rc=%d stderr=%q", code, errOut)
	}
	va("daemon-log-filters", "1:storage")
	if out := va("daemon-log-filters"); out != " Logging filters: 1:*storage* \n\n" {
		t.Errorf("daemon-log-filters after set: %q", out)
	}
	va("daemon-log-filters", "")
	if out := va("daemon-log-filters"); out != " Logging filters: \n\n" {
		t.Errorf("daemon-log-filters after clearing: %q", out)
	}
	if out := va("daemon-log-outputs"); !strings.HasPrefix(out, " Logging outputs: ") {
		t.Errorf("daemon-log-outputs: %q", out)
	}
}
