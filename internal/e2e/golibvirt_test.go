package e2e_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func dialGoLibvirt(t *testing.T, d *testkit.Daemon) *libvirt.Libvirt {
	t.Helper()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.SocketPath()), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(libvirt.ConnectURI("storage:///system")); err != nil {
		t.Fatalf("go-libvirt ConnectToURI: %v", err)
	}
	return l
}

// syncWriter is an io.Writer the test can read while a stream writes to it.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.buf.Bytes()...)
}

// TestGoLibvirt drives the daemon with digitalocean/go-libvirt.
func TestGoLibvirt(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{})
	base := poolBase(t, "g")
	l := dialGoLibvirt(t, d)

	ver, err := l.ConnectGetLibVersion()
	if err != nil || ver < 9000000 {
		t.Errorf("ConnectGetLibVersion = %d, %v; want >= 9000000", ver, err)
	}
	target := filepath.Join(base, "p")
	pool, err := l.StoragePoolDefineXML("<pool type='dir'><name>e2eg</name><target><path>"+target+"</path></target></pool>", 0)
	if err != nil {
		t.Fatalf("StoragePoolDefineXML: %v", err)
	}
	if err := l.StoragePoolBuild(pool, libvirt.StoragePoolBuildNew); err != nil {
		t.Fatalf("StoragePoolBuild: %v", err)
	}
	if err := l.StoragePoolCreate(pool, libvirt.StoragePoolCreateNormal); err != nil {
		t.Fatalf("StoragePoolCreate: %v", err)
	}
	pools, _, err := l.ConnectListAllStoragePools(1, libvirt.ConnectListStoragePoolsActive)
	if err != nil || len(pools) != 1 || pools[0].Name != "e2eg" || pools[0].UUID != pool.UUID {
		t.Errorf("ConnectListAllStoragePools = %+v, %v; want the one pool", pools, err)
	}
	vol, err := l.StorageVolCreateXML(pool, "<volume><name>g.img</name><capacity>5000</capacity><allocation>0</allocation></volume>", 0)
	if err != nil {
		t.Fatalf("StorageVolCreateXML: %v", err)
	}
	want := make([]byte, 5000)
	for i := range want {
		want[i] = byte(i%251 + 1)
	}
	if err := l.StorageVolUpload(vol, bytes.NewReader(want), 0, 5000, 0); err != nil {
		t.Fatalf("StorageVolUpload: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(target, "g.img")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("after upload the file holds %d bytes (%v), want the 5000 uploaded", len(got), err)
	}
	// go-libvirt never returns from a download: the data must arrive and the
	// connection must keep serving later calls.
	var sink syncWriter
	go func() { _ = l.StorageVolDownload(vol, &sink, 0, 5000, 0) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.Bytes()) < 5000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := sink.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("download delivered %d bytes, want the 5000 uploaded", len(got))
	}

	byName, err := l.StoragePoolLookupByName("e2eg")
	if err != nil || byName.UUID != pool.UUID {
		t.Errorf("StoragePoolLookupByName = %+v, %v", byName, err)
	}
	byUUID, err := l.StoragePoolLookupByUUID(pool.UUID)
	if err != nil || byUUID.Name != "e2eg" {
		t.Errorf("StoragePoolLookupByUUID = %+v, %v", byUUID, err)
	}
	path := filepath.Join(target, "g.img")
	for name, lookup := range map[string]func() (libvirt.StorageVol, error){
		"name": func() (libvirt.StorageVol, error) { return l.StorageVolLookupByName(pool, "g.img") },
		"key":  func() (libvirt.StorageVol, error) { return l.StorageVolLookupByKey(path) },
		"path": func() (libvirt.StorageVol, error) { return l.StorageVolLookupByPath(path) },
	} {
		v, err := lookup()
		if err != nil || v.Name != "g.img" || v.Key != path || v.Pool != "e2eg" {
			t.Errorf("StorageVolLookupBy%s = %+v, %v", name, v, err)
		}
	}
	if p, err := l.StorageVolGetPath(vol); err != nil || p != path {
		t.Errorf("StorageVolGetPath = %q, %v", p, err)
	}
	if typ, capacity, _, err := l.StorageVolGetInfo(vol); err != nil || typ != 0 || capacity != 5000 {
		t.Errorf("StorageVolGetInfo = %d %d, %v; want file, 5000", typ, capacity, err)
	}
	_, err = l.StorageVolLookupByName(pool, "nosuch")
	var lerr libvirt.Error
	if !errors.As(err, &lerr) || lerr.Code != 50 || lerr.Message != "Storage volume not found: no storage vol with matching name 'nosuch'" {
		t.Errorf("StorageVolLookupByName(nosuch) = %#v, want code 50 and libvirt's message", err)
	}
	if err := l.StorageVolDelete(vol, 0); err != nil {
		t.Errorf("StorageVolDelete: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("volume file after delete: %v", err)
	}
	if err := l.StoragePoolDestroy(pool); err != nil {
		t.Errorf("StoragePoolDestroy: %v", err)
	}
	if err := l.StoragePoolUndefine(pool); err != nil {
		t.Errorf("StoragePoolUndefine: %v", err)
	}
	if err := l.Disconnect(); err != nil {
		t.Errorf("Disconnect: %v", err)
	}
	ok(t, d, "pool-list", "--all") // the daemon outlives the abandoned download
}

// TestConcurrentClients runs 10 clients (virsh and go-libvirt) creating and
// deleting volumes in one pool while another downloads, then checks that the
// pool, once refreshed, agrees with the disk.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{})
	base := poolBase(t, "c")
	target := filepath.Join(base, "p")
	ok(t, d, "pool-create-as", "e2ec", "dir", "--target", target, "--build")
	ok(t, d, "vol-create-as", "e2ec", "big.img", "64M")

	stop := make(chan struct{})
	var dl sync.WaitGroup
	dl.Add(1)
	downloads := 0
	go func() {
		defer dl.Done()
		out := filepath.Join(base, "down.bin")
		for {
			select {
			case <-stop:
				return
			default:
			}
			if o, e, code := d.Virsh("vol-download", "big.img", out, "--pool", "e2ec"); code != 0 {
				t.Errorf("vol-download during the churn: rc=%d %s %s", code, o, e)
				return
			}
			downloads++
		}
	}()

	var wg sync.WaitGroup
	for c := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c%2 == 0 {
				for i := range 3 {
					name := fmt.Sprintf("v%d-%d.img", c, i)
					if o, e, code := d.Virsh("vol-create-as", "e2ec", name, "1M", "--allocation", "0"); code != 0 {
						t.Errorf("virsh vol-create-as %s: rc=%d %s %s", name, code, o, e)
						continue
					}
					if i%2 == 0 {
						if o, e, code := d.Virsh("vol-delete", name, "--pool", "e2ec"); code != 0 {
							t.Errorf("virsh vol-delete %s: rc=%d %s %s", name, code, o, e)
						}
					}
				}
				return
			}
			l := dialGoLibvirt(t, d)
			defer l.Disconnect()
			pool, err := l.StoragePoolLookupByName("e2ec")
			if err != nil {
				t.Errorf("client %d: lookup: %v", c, err)
				return
			}
			for i := range 6 {
				name := fmt.Sprintf("g%d-%d.qcow2", c, i)
				xml := "<volume><name>" + name + "</name><capacity>1048576</capacity><target><format type='qcow2'/></target></volume>"
				if i%3 == 0 {
					xml = "<volume><name>" + name + "</name><capacity>1048576</capacity><allocation>0</allocation></volume>"
				}
				v, err := l.StorageVolCreateXML(pool, xml, 0)
				if err != nil {
					t.Errorf("client %d: create %s: %v", c, name, err)
					continue
				}
				if _, _, err := l.StoragePoolListAllVolumes(pool, 1, 0); err != nil {
					t.Errorf("client %d: list: %v", c, err)
				}
				if i%2 == 1 {
					if err := l.StorageVolDelete(v, 0); err != nil {
						t.Errorf("client %d: delete %s: %v", c, name, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	dl.Wait()
	if downloads == 0 {
		t.Errorf("no download completed during the churn")
	}

	ok(t, d, "pool-refresh", "e2ec")
	var onDisk []string
	ents, _ := os.ReadDir(target)
	var allocated int64
	for _, e := range ents {
		onDisk = append(onDisk, e.Name())
		_, a := fileBlocks(t, filepath.Join(target, e.Name()))
		allocated += a
	}
	out := ok(t, d, "vol-list", "e2ec")
	var listed []string
	for _, line := range strings.Split(out, "\n")[2:] {
		if f := strings.Fields(line); len(f) == 2 {
			listed = append(listed, f[0])
			if f[1] != filepath.Join(target, f[0]) {
				t.Errorf("vol-list path %q for %q", f[1], f[0])
			}
		}
	}
	if strings.Join(listed, " ") != strings.Join(onDisk, " ") {
		t.Errorf("after refresh vol-list shows\n%v\nthe disk holds\n%v", listed, onDisk)
	}
	if len(onDisk) != 1+5+5*3 {
		t.Errorf("%d volumes on disk, want 21 (big.img, 5 virsh clients x1, 5 go-libvirt clients x3)", len(onDisk))
	}
	info := ok(t, d, "pool-info", "--bytes", "e2ec")
	var alloc int64
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "Allocation:") {
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "Allocation:")), "%d", &alloc)
		}
	}
	if alloc < allocated {
		t.Errorf("pool allocation %d is below the volumes' %d allocated bytes", alloc, allocated)
	}
}
