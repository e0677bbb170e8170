package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
)

// qcow2Header is a small qcow2 image, as qemu-img writes it, whose copies make the
// qcow2 half of refresh_10k (cluster_size=512 keeps it at a few KiB).
func qcow2Header(ctx context.Context, dir string) ([]byte, error) {
	tmpl := filepath.Join(dir, "tmpl.qcow2")
	defer os.Remove(tmpl) //nolint:errcheck // may not exist
	out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2",
		"-o", "cluster_size=512", tmpl, "1M").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("bench: qemu-img create: %w: %s", err, strings.TrimSpace(string(out)))
	}
	b, err := os.ReadFile(tmpl)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return b, nil
}

// refresh10k is storbench's refresh_10k: Files small volumes (half 1 MiB sparse raw,
// half tiny qcow2) in a persistent dir pool; times define, start (the first scan),
// refresh, listAllVolumes, and listAllVolumes + getInfo of each volume.
func refresh10k(ctx context.Context, e *env, o *outcome) error {
	name, dir := "bench-vsb-10k", filepath.Join(e.dir, "10k")
	if err := e.s.dropPool(ctx, name); err != nil {
		return err
	}
	os.RemoveAll(dir) //nolint:errcheck // recreated below
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer e.dropPoolDir(name, dir)
	qhdr, err := qcow2Header(ctx, e.dir)
	if err != nil {
		return err
	}
	e.status("creating files")
	t := time.Now()
	for i := range e.cfg.Files {
		var err error
		if i%2 == 1 {
			err = os.WriteFile(filepath.Join(dir, fmt.Sprintf("bench-%05d.qcow2", i)), qhdr, 0o644)
		} else {
			err = truncFile(filepath.Join(dir, fmt.Sprintf("bench-%05d.raw", i)), 1<<20)
		}
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	// storbench syncs too: a start straight after the writes measured writeback, not scanning.
	unix.Sync()
	o.add("mkfiles_s", "s", time.Since(t).Seconds())
	n := float64(e.cfg.Files)

	e.status("define + start")
	m := e.meter()
	def, err := e.s.StoragePoolDefineXML(ctx, &remote.StoragePoolDefineXMLArgs{XML: poolXML(name, dir)})
	if err != nil {
		return fmt.Errorf("bench: define pool: %w", err)
	}
	p := def.Pool
	o.add("define_s", "s", m.stop().wall)
	m = e.meter()
	if err := e.s.StoragePoolCreate(ctx, &remote.StoragePoolCreateArgs{Pool: p}); err != nil {
		return fmt.Errorf("bench: start pool: %w", err)
	}
	c := m.stop()
	o.add("start_s", "s", c.wall)
	if c.hasDaemon {
		o.add("start_daemon_cpu_s", "s", c.daemon)
	}
	nv, err := e.s.StoragePoolNumOfVolumes(ctx, &remote.StoragePoolNumOfVolumesArgs{Pool: p})
	if err != nil {
		return fmt.Errorf("bench: number of volumes: %w", err)
	}
	if int(nv.Num) != e.cfg.Files {
		o.warn("pool shows %d volumes, expected %d", nv.Num, e.cfg.Files)
	}
	if v, err := e.s.lookupVol(ctx, p, "bench-00001.qcow2"); err != nil {
		o.warn("%v", err)
	} else if x, err := e.s.StorageVolGetXMLDesc(ctx, &remote.StorageVolGetXMLDescArgs{Vol: v}); err != nil {
		o.warn("volume XML: %v", err)
	} else if !strings.Contains(x.XML, "type='qcow2'") && !strings.Contains(x.XML, `type="qcow2"`) {
		o.warn("qcow2 file not detected as qcow2")
	}

	e.status("refresh")
	m = e.meter()
	if err := e.s.StoragePoolRefresh(ctx, &remote.StoragePoolRefreshArgs{Pool: p}); err != nil {
		return fmt.Errorf("bench: refresh pool: %w", err)
	}
	c = m.stop()
	o.add("refresh_s", "s", c.wall)
	o.add("refresh_per_vol_us", "us", c.wall/n*1e6)
	if c.hasDaemon {
		o.add("refresh_daemon_cpu_us_per_vol", "us", c.daemon/n*1e6)
	}

	e.status("list")
	listArgs := &remote.StoragePoolListAllVolumesArgs{Pool: p, NeedResults: 1}
	m = e.meter()
	l, err := e.s.StoragePoolListAllVolumes(ctx, listArgs)
	if err != nil {
		return fmt.Errorf("bench: list volumes: %w", err)
	}
	list := m.stop().wall
	o.add("list_s", "s", list)
	if len(l.Vols) != e.cfg.Files {
		o.warn("listAllVolumes returned %d volumes, expected %d", len(l.Vols), e.cfg.Files)
	}

	e.status("list + info")
	m = e.meter()
	l, err = e.s.StoragePoolListAllVolumes(ctx, listArgs)
	if err != nil {
		return fmt.Errorf("bench: list volumes: %w", err)
	}
	for _, v := range l.Vols {
		if _, err := e.s.StorageVolGetInfo(ctx, &remote.StorageVolGetInfoArgs{Vol: v}); err != nil {
			return fmt.Errorf("bench: volume info %s: %w", v.Name, err)
		}
	}
	c = m.stop()
	o.add("list_info_s", "s", c.wall)
	o.add("info_per_vol_us", "us", (c.wall-list)/n*1e6)
	o.cpu(c, float64(len(l.Vols)+1), "us", "call")

	// The same on one connection with calls in flight together, as a Go
	// client of gen/ would do it: the protocol matches replies by serial,
	// and the round trip, not the daemon, bounds the lockstep figure.
	e.status("list + info, pipelined")
	m = e.meter()
	l, err = e.s.StoragePoolListAllVolumes(ctx, listArgs)
	if err != nil {
		return fmt.Errorf("bench: list volumes: %w", err)
	}
	if err := pipelinedInfo(ctx, e.s, l.Vols, listInfoWindow); err != nil {
		return err
	}
	o.add("list_info_pipelined_s", "s", m.stop().wall)
	return nil
}

// listInfoWindow is how many volume info calls the pipelined list + info
// keeps in flight on its one connection.
const listInfoWindow = 32

func pipelinedInfo(ctx context.Context, s *Session, vols []remote.StorageVol, window int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan remote.StorageVol)
	errs := make(chan error, window)
	for range window {
		go func() {
			for v := range next {
				if _, err := s.StorageVolGetInfo(ctx, &remote.StorageVolGetInfoArgs{Vol: v}); err != nil {
					errs <- fmt.Errorf("bench: volume info %s: %w", v.Name, err)
					cancel()
					for range next {
					}
					return
				}
			}
			errs <- nil
		}()
	}
feed:
	for _, v := range vols {
		select {
		case next <- v:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	var first error
	for range window {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
