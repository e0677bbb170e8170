package domain_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

func TestPoolTransitions(t *testing.T) {
	t.Parallel()
	type step struct {
		op      string
		wantErr string
	}
	tests := []struct {
		name           string
		givePersistent bool
		steps          []step
		wantActive     bool
	}{
		{name: "start then stop", givePersistent: true, steps: []step{
			{op: "begin-start"}, {op: "finish-start"}, {op: "check-active"}, {op: "begin-stop"}, {op: "stop"},
			{op: "check-active", wantErr: "Requested operation is not valid: storage pool 'p' is not active"},
		}},
		{name: "start twice", givePersistent: true, wantActive: true, steps: []step{
			{op: "begin-start"}, {op: "finish-start"},
			{op: "begin-start", wantErr: "Requested operation is not valid: storage pool 'p' is already active"},
		}},
		{name: "while starting", givePersistent: true, steps: []step{
			{op: "begin-start"},
			{op: "begin-start", wantErr: "Requested operation is not valid: storage pool 'p' is starting up"},
			{op: "check-active", wantErr: "Requested operation is not valid: storage pool 'p' is starting up"},
			{op: "check-inactive", wantErr: "Requested operation is not valid: storage pool 'p' is starting up"},
			{op: "abort-start"}, {op: "check-inactive"},
		}},
		{name: "undefine running", givePersistent: true, wantActive: true, steps: []step{
			{op: "begin-start"}, {op: "finish-start"},
			{op: "check-undefinable", wantErr: "Requested operation is not valid: storage pool 'p' is still active"},
			{op: "check-inactive", wantErr: "Requested operation is not valid: storage pool 'p' is still active"},
		}},
		{name: "stop inactive", givePersistent: true, steps: []step{
			{op: "begin-stop", wantErr: "Requested operation is not valid: storage pool 'p' is not active"},
		}},
		{name: "stop with jobs", givePersistent: true, wantActive: true, steps: []step{
			{op: "begin-start"}, {op: "finish-start"}, {op: "add-building"},
			{op: "begin-stop", wantErr: "internal error: pool 'p' has asynchronous jobs running."},
		}},
		{name: "stopping refuses volume work", givePersistent: true, steps: []step{
			{op: "begin-start"}, {op: "finish-start"}, {op: "begin-stop"},
			{op: "check-active", wantErr: "Requested operation is not valid: storage pool 'p' is not active"},
			{op: "abort-stop"}, {op: "check-active"}, {op: "begin-stop"}, {op: "stop"},
		}},
		{name: "transient autostart", givePersistent: false, steps: []step{
			{op: "autostart", wantErr: "internal error: pool has no config file"},
		}},
		{name: "persistent autostart", givePersistent: true, steps: []step{{op: "autostart"}, {op: "check-undefinable"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := domain.NewPool(dirPool("p", 1, "/p"), tt.givePersistent)
			for i, s := range tt.steps {
				var err error
				switch s.op {
				case "begin-start":
					err = p.BeginStart()
				case "abort-start":
					p.AbortStart()
				case "finish-start":
					p.FinishStart(domain.PoolStats{Capacity: 10}, nil)
				case "check-active":
					err = p.CheckActive()
				case "check-inactive":
					err = p.CheckInactive()
				case "check-undefinable":
					err = p.CheckUndefinable()
				case "begin-stop":
					err = p.BeginStop()
				case "abort-stop":
					p.AbortStop()
				case "stop":
					p.Stop()
				case "add-building":
					_, err = p.AddBuilding(&domain.VolDef{Name: "v"})
				case "autostart":
					err = p.SetAutostart(true)
				default:
					t.Fatalf("unknown op %q", s.op)
				}
				t.Logf("step %d %s", i, s.op)
				checkErr(t, err, s.wantErr, 0)
			}
			if p.Active() != tt.wantActive {
				t.Fatalf("active = %v, want %v", p.Active(), tt.wantActive)
			}
		})
	}
}

func TestPoolRedefineRunning(t *testing.T) {
	t.Parallel()
	old := dirPool("p", 1, "/old")
	p := domain.NewPool(old, true)
	_ = p.BeginStart()
	p.FinishStart(domain.PoolStats{}, nil)
	newer := dirPool("p", 1, "/new")
	p.Redefine(newer)
	if p.Def() != old || p.InactiveDef() != newer || p.PendingDef() != newer {
		t.Fatalf("running pool: live %v inactive %v", p.Def().Target, p.InactiveDef().Target)
	}
	if remove := p.Stop(); remove {
		t.Fatalf("persistent pool asked to be removed")
	}
	if p.Def() != newer || p.PendingDef() != nil {
		t.Fatalf("after stop the pending definition should be live, got %v", p.Def().Target)
	}
	p.Redefine(old)
	if p.Def() != old {
		t.Fatalf("inactive redefine should replace the definition")
	}
}

func TestPoolRedefineWhileBuilding(t *testing.T) {
	t.Parallel()
	p := domain.NewPool(dirPool("p", 1, "/old"), true)
	checkErr(t, p.BeginStart(), "", 0)
	newer := dirPool("p", 1, "/new")
	p.Redefine(newer)
	if p.Def().Target.Path != "/old" {
		t.Fatalf("definition changed under a running build")
	}
	p.AbortStart()
	if p.Def() != newer || p.PendingDef() != nil {
		t.Fatalf("redefinition lost after the build: live %v", p.Def().Target)
	}
}

func TestPoolReplaceLive(t *testing.T) {
	t.Parallel()
	cfg := dirPool("p", 1, "/cfg")
	p := domain.NewPool(cfg, true)
	live := dirPool("p", 1, "/live")
	p.ReplaceLive(live)
	if p.Def() != live || p.InactiveDef() != cfg {
		t.Fatalf("ReplaceLive: live %v inactive %v", p.Def().Target, p.InactiveDef().Target)
	}
	p.Stop()
	if p.Def() != cfg {
		t.Fatalf("stop should restore the config definition")
	}
	tr := domain.NewPool(dirPool("t", 2, "/t"), false)
	if !tr.Stop() {
		t.Fatalf("transient pool should be removed when it stops")
	}
}

func TestVolumeJobs(t *testing.T) {
	t.Parallel()
	p := domain.NewPool(dirPool("p", 1, "/p"), true)
	_ = p.BeginStart()
	p.FinishStart(domain.PoolStats{}, []*domain.VolDef{{Name: "a"}})
	a := p.Volume("a")
	b, err := p.AddBuilding(&domain.VolDef{Name: "b", Key: "/p/b"})
	checkErr(t, err, "", 0)
	_, err = p.AddBuilding(&domain.VolDef{Name: "b"})
	checkErr(t, err, "storage volume 'b' exists already", domain.KindStorageVolExist)

	checkErr(t, b.AcquireExclusive(), "Requested operation is not valid: volume 'b' is still being allocated.", domain.KindOperationInvalid)
	checkErr(t, b.AcquireShared(), "Requested operation is not valid: volume 'b' is still being allocated.", domain.KindOperationInvalid)

	checkErr(t, a.AcquireShared(), "", 0)
	checkErr(t, a.AcquireShared(), "", 0)
	checkErr(t, a.AcquireExclusive(), "Requested operation is not valid: volume 'a' is still in use.", domain.KindOperationInvalid)
	a.ReleaseShared()
	a.ReleaseShared()
	checkErr(t, a.AcquireExclusive(), "", 0)
	checkErr(t, a.AcquireShared(), "Requested operation is not valid: volume 'a' is still in use.", domain.KindOperationInvalid)
	a.ReleaseExclusive()
	if a.Busy() {
		t.Fatalf("a still busy after release")
	}

	// A refresh that misses the building volume and lists a new file keeps b.
	p.ApplyRefresh(domain.PoolStats{Capacity: 5}, []*domain.VolDef{{Name: "a", Capacity: 7}, {Name: "c"}})
	var names []string
	for _, v := range p.Volumes() {
		names = append(names, v.Def.Name)
	}
	if got, want := names, []string{"a", "c", "b"}; !equalStrings(got, want) {
		t.Fatalf("volumes after refresh = %v, want %v", got, want)
	}
	if p.Volume("b") != b || !b.Building() {
		t.Fatalf("building volume lost by refresh")
	}
	if p.Volume("a").Def.Capacity != 7 {
		t.Fatalf("idle volume not updated by refresh")
	}
	b.FinishBuild(&domain.VolDef{Name: "b", Key: "/p/b", Allocation: 3, Target: domain.VolTarget{Path: "/p/b"}})
	if b.Building() || b.Def.Allocation != 3 {
		t.Fatalf("FinishBuild did not install figures")
	}
	if p.VolumeByKey("/p/b") != b || p.VolumeByPath("/p//b/") != b {
		t.Fatalf("lookup by key or cleaned path failed")
	}
	p.RemoveVolume(b)
	if p.Volume("b") != nil {
		t.Fatalf("RemoveVolume kept b")
	}
	_, err = p.LookupVolume("b")
	checkErr(t, err, "Storage volume not found: no storage vol with matching name 'b'", domain.KindNoStorageVol)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestApplyRefreshSince(t *testing.T) {
	t.Parallel()
	p := domain.NewPool(dirPool("p", 1, "/p"), true)
	_ = p.BeginStart()
	p.FinishStart(domain.PoolStats{Capacity: 100, Allocation: 10, Available: 90}, []*domain.VolDef{{Name: "old", Allocation: 10}})
	token := p.BeginRefresh()

	// While the refresh runs, "new" is created and "old" deleted.
	res, err := p.Ledger.ReserveVol("p", "new", 20)
	checkErr(t, err, "", 0)
	v, err := p.AddBuilding(&domain.VolDef{Name: "new", Allocation: 20})
	checkErr(t, err, "", 0)
	p.VolumeCreated(v, &domain.VolDef{Name: "new", Allocation: 20}, res)
	p.VolumeDeleted(p.Volume("old"))

	// The refresh measured before both.
	p.ApplyRefreshSince(token, domain.PoolStats{Capacity: 100, Allocation: 10, Available: 90}, []*domain.VolDef{{Name: "old", Allocation: 10}})
	if p.Volume("old") != nil || p.Volume("new") != v {
		t.Fatalf("refresh resurrected or dropped a volume")
	}
	if got, want := p.Ledger.Stats(), (domain.PoolStats{Capacity: 100, Allocation: 20, Available: 80}); got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
	// A later refresh that sees everything is taken as is.
	token = p.BeginRefresh()
	p.ApplyRefreshSince(token, domain.PoolStats{Capacity: 100, Allocation: 21, Available: 79}, []*domain.VolDef{{Name: "new", Allocation: 21}})
	if got := p.Ledger.Stats().Allocation; got != 21 || p.Volume("new").Def.Allocation != 21 {
		t.Fatalf("quiet refresh not applied: %d", got)
	}
}

// A thin pool's provisioned figure follows its volumes through creates and
// deletes between refreshes; a thick pool has none.
func TestPoolStatsProvisioned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		thin            bool
		caps            []uint64
		deleteFirst     bool
		wantProvisioned uint64
	}{
		{name: "thin, empty", thin: true},
		{name: "thin, overcommitted", thin: true, caps: []uint64{60, 70}, wantProvisioned: 130},
		{name: "thin, after a delete", thin: true, caps: []uint64{60, 70}, deleteFirst: true, wantProvisioned: 70},
		{name: "thick", caps: []uint64{60}, wantProvisioned: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := domain.NewPool(dirPool("p", 1, "/p"), true)
			_ = p.BeginStart()
			p.FinishStart(domain.PoolStats{Capacity: 100, Allocation: 0, Available: 100, Thin: tc.thin}, nil)
			for i, c := range tc.caps {
				name := string(rune('a' + i))
				res, err := p.Ledger.ReserveVol("p", name, 0)
				checkErr(t, err, "", 0)
				v, err := p.AddBuilding(&domain.VolDef{Name: name, Capacity: c})
				checkErr(t, err, "", 0)
				p.VolumeCreated(v, &domain.VolDef{Name: name, Capacity: c}, res)
			}
			if tc.deleteFirst {
				p.VolumeDeleted(p.Volume("a"))
			}
			st := p.Stats()
			if st.Thin != tc.thin || st.Provisioned != tc.wantProvisioned {
				t.Fatalf("stats = %+v, want thin %v provisioned %d", st, tc.thin, tc.wantProvisioned)
			}
		})
	}
}

// TestCloneSourcePointers checks that a clone shares no adapter, parent
// address or auth with its original, which backends may fill in.
func TestCloneSourcePointers(t *testing.T) {
	t.Parallel()
	d := &domain.PoolDef{Source: domain.PoolSource{
		Adapter: &domain.SourceAdapter{Type: domain.AdapterSCSIHost, ParentAddr: &domain.PCIAddress{Slot: 3}},
		Auth:    &domain.PoolAuth{Type: "chap", Username: "u", SecretUsage: "x"},
	}}
	c := d.Clone()
	c.Source.Adapter.ParentAddr.Slot = 4
	c.Source.Adapter.Name = "host1"
	c.Source.Auth.Username = "v"
	if d.Source.Adapter.ParentAddr.Slot != 3 || d.Source.Adapter.Name != "" || d.Source.Auth.Username != "u" {
		t.Errorf("changing the clone changed the original: %+v %+v", d.Source.Adapter, d.Source.Auth)
	}
}
