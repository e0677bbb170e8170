package domain_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

const gib = 1 << 30

func TestLedgerReservations(t *testing.T) {
	t.Parallel()
	var l domain.Ledger
	l.Reset(domain.PoolStats{Capacity: 10 * gib, Allocation: 4 * gib, Available: 6 * gib})

	r1, err := l.ReserveVol("p", "a", 4*gib)
	checkErr(t, err, "", 0)
	// The second create sees the first one's reservation.
	_, err = l.ReserveVol("p", "b", 4*gib)
	checkErr(t, err, "operation failed: Not enough space left in storage pool 'p' for volume 'b' (needs 4294967296 bytes, 2147483648 available)", domain.KindOperationFailed)

	r1.Commit(3 * gib) // allocated less than estimated
	if got, want := l.Stats(), (domain.PoolStats{Capacity: 10 * gib, Allocation: 7 * gib, Available: 3 * gib}); got != want {
		t.Fatalf("stats after commit = %+v, want %+v", got, want)
	}
	if l.Reserved() != 0 {
		t.Fatalf("reserved = %d after commit", l.Reserved())
	}
	r1.Release() // no-op after commit
	if l.Stats().Allocation != 7*gib {
		t.Fatalf("double release changed the ledger")
	}

	r2, err := l.ReserveVol("p", "c", 3*gib)
	checkErr(t, err, "", 0)
	r2.Release()
	r2.Release()
	if l.Free() != 3*gib {
		t.Fatalf("free = %d after release, want %d", l.Free(), 3*gib)
	}

	l.Remove(7 * gib)
	if got, want := l.Stats(), (domain.PoolStats{Capacity: 10 * gib, Allocation: 0, Available: 10 * gib}); got != want {
		t.Fatalf("stats after remove = %+v, want %+v", got, want)
	}
	l.Remove(1) // saturates instead of wrapping
	if got := l.Stats(); got.Allocation != 0 || got.Available != 10*gib {
		t.Fatalf("remove past zero = %+v", got)
	}

	_, err = l.ReserveResize(11 * gib)
	checkErr(t, err, "operation failed: Not enough space left in storage pool", domain.KindOperationFailed)
}

func TestLedgerUnknownFiguresAdmitEverything(t *testing.T) {
	t.Parallel()
	var l domain.Ledger
	r, err := l.ReserveVol("p", "v", gib)
	checkErr(t, err, "", 0)
	r.Commit(gib)
	if got := l.Stats(); got.Allocation != gib || got.Available != 0 {
		t.Fatalf("stats = %+v", got)
	}
}

func TestInitialAllocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveVol   domain.VolDef
		giveFlags uint32
		want      uint64
	}{
		{name: "raw default full", giveVol: domain.VolDef{Capacity: 10, Target: domain.VolTarget{Format: "raw"}}, want: 10},
		{name: "raw sparse", giveVol: domain.VolDef{Capacity: 10, HasAllocation: true, Target: domain.VolTarget{Format: "raw"}}, want: 0},
		{name: "raw partial", giveVol: domain.VolDef{Capacity: 10, Allocation: 4, HasAllocation: true}, want: 4},
		{name: "qcow2", giveVol: domain.VolDef{Capacity: 10, Allocation: 10, HasAllocation: true, Target: domain.VolTarget{Format: "qcow2"}}, want: 0},
		{name: "qcow2 prealloc", giveVol: domain.VolDef{Capacity: 10, Target: domain.VolTarget{Format: "qcow2"}}, giveFlags: domain.VolCreatePreallocMetadata, want: 10},
		{name: "dir", giveVol: domain.VolDef{Capacity: 10, Target: domain.VolTarget{Format: "dir"}}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := domain.InitialAllocation(&tt.giveVol, tt.giveFlags); got != tt.want {
				t.Fatalf("InitialAllocation = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPlanResize(t *testing.T) {
	t.Parallel()
	vol := domain.VolDef{Name: "v", Capacity: 100, Allocation: 40}
	lv := domain.VolDef{Name: "lv", Type: domain.VolBlock, Capacity: 100, Allocation: 100}
	tests := []struct {
		name      string
		giveVol   *domain.VolDef // vol when nil
		giveCap   uint64
		giveFlags uint32
		want      domain.ResizePlan
		wantErr   string
	}{
		{name: "grow", giveCap: 200, want: domain.ResizePlan{Capacity: 200}},
		{name: "grow delta", giveCap: 50, giveFlags: domain.VolResizeDelta, want: domain.ResizePlan{Capacity: 150}},
		{name: "grow allocate", giveCap: 200, giveFlags: domain.VolResizeAllocate,
			want: domain.ResizePlan{Capacity: 200, Delta: 160, Flags: domain.VolResizeAllocate}},
		{name: "shrink without flag", giveCap: 50,
			wantErr: "invalid argument: Can't shrink capacity below current capacity unless shrink flag explicitly specified"},
		{name: "shrink", giveCap: 50, giveFlags: domain.VolResizeShrink, want: domain.ResizePlan{Capacity: 50, Flags: domain.VolResizeShrink}},
		{name: "shrink delta", giveCap: 10, giveFlags: domain.VolResizeShrink | domain.VolResizeDelta,
			want: domain.ResizePlan{Capacity: 90, Flags: domain.VolResizeShrink}},
		{name: "shrink below allocation", giveCap: 30, giveFlags: domain.VolResizeShrink,
			wantErr: "invalid argument: can't shrink capacity below existing allocation"},
		{name: "shrink delta past zero", giveCap: 1000, giveFlags: domain.VolResizeShrink | domain.VolResizeDelta,
			wantErr: "invalid argument: can't shrink capacity below existing allocation"},
		{name: "delta overflow", giveCap: ^uint64(0), giveFlags: domain.VolResizeDelta,
			wantErr: "numerical overflow: value too large: capacity 100 + 18446744073709551615"},
		// An LV is allocated whole: only the SHRINK flag guards a shrink.
		{name: "block shrink", giveVol: &lv, giveCap: 60, giveFlags: domain.VolResizeShrink,
			want: domain.ResizePlan{Capacity: 60, Flags: domain.VolResizeShrink}},
		{name: "block shrink without flag", giveVol: &lv, giveCap: 60,
			wantErr: "invalid argument: Can't shrink capacity below current capacity unless shrink flag explicitly specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := &vol
			if tt.giveVol != nil {
				v = tt.giveVol
			}
			got, err := domain.PlanResize(v, tt.giveCap, tt.giveFlags)
			checkErr(t, err, tt.wantErr, 0)
			if err == nil && got != tt.want {
				t.Fatalf("plan = %+v, want %+v", got, tt.want)
			}
		})
	}
}
