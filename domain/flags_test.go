package domain_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

func TestCheckFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveFlags uint32
		giveMask  uint32
		giveFn    string
		wantErr   string
	}{
		{name: "zero", giveFlags: 0, giveMask: 0, giveFn: "storagePoolRefresh"},
		{name: "within", giveFlags: 0x5, giveMask: domain.MaskVolCreate, giveFn: "storageVolCreateXML"},
		{name: "refresh flag", giveFlags: 1, giveMask: domain.MaskPoolRefresh, giveFn: "storagePoolRefresh",
			wantErr: "unsupported flags (0x1) in function storagePoolRefresh"},
		{name: "reflink on create", giveFlags: 0x3, giveMask: domain.MaskVolCreate, giveFn: "storageVolCreateXML",
			wantErr: "unsupported flags (0x2) in function storageVolCreateXML"},
		{name: "list all high bit", giveFlags: 0x40000002, giveMask: domain.MaskListAllPools, giveFn: "storageConnectListAllStoragePools",
			wantErr: "unsupported flags (0x40000000) in function storageConnectListAllStoragePools"},
		{name: "list all iscsi-direct ok", giveFlags: 1 << 19, giveMask: domain.MaskListAllPools, giveFn: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.CheckFlags(tt.giveFlags, tt.giveMask, tt.giveFn), tt.wantErr, domain.KindInvalidArg)
		})
	}
}

func TestCreateBuildFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		giveFlags      uint32
		wantBuild      bool
		wantBuildFlags uint32
		wantErr        string
	}{
		{name: "none", giveFlags: 0},
		{name: "build", giveFlags: domain.PoolCreateWithBuild, wantBuild: true},
		{name: "overwrite", giveFlags: domain.PoolCreateWithBuildOverwrite, wantBuild: true, wantBuildFlags: domain.PoolBuildOverwrite},
		{name: "no overwrite", giveFlags: domain.PoolCreateWithBuildNoOverwrite, wantBuild: true, wantBuildFlags: domain.PoolBuildNoOverwrite},
		// libvirt 9.0 lets OVERWRITE win rather than refusing the pair (measured).
		{name: "both", giveFlags: domain.PoolCreateWithBuildOverwrite | domain.PoolCreateWithBuildNoOverwrite,
			wantBuild: true, wantBuildFlags: domain.PoolBuildOverwrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			build, bf, err := domain.CreateBuildFlags(tt.giveFlags)
			checkErr(t, err, tt.wantErr, domain.KindInvalidArg)
			if build != tt.wantBuild || bf != tt.wantBuildFlags {
				t.Fatalf("got (%v, %#x), want (%v, %#x)", build, bf, tt.wantBuild, tt.wantBuildFlags)
			}
		})
	}
}

func TestCheckBuildFlags(t *testing.T) {
	t.Parallel()
	checkErr(t, domain.CheckBuildFlags(domain.PoolBuildOverwrite), "", 0)
	checkErr(t, domain.CheckBuildFlags(domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite),
		"Flags 'VIR_STORAGE_POOL_BUILD_OVERWRITE' and 'VIR_STORAGE_POOL_BUILD_NO_OVERWRITE' are mutually exclusive",
		domain.KindInvalidArg)
}

func TestMatchListFlags(t *testing.T) {
	t.Parallel()
	activeDirAuto := domain.PoolListAttrs{Type: domain.PoolDir, Active: true, Persistent: true, Autostart: true}
	inactiveLogical := domain.PoolListAttrs{Type: domain.PoolLogical, Persistent: true}
	transientFS := domain.PoolListAttrs{Type: domain.PoolFS, Active: true}
	tests := []struct {
		name      string
		giveFlags uint32
		giveAttrs domain.PoolListAttrs
		want      bool
	}{
		{name: "no filter", giveFlags: 0, giveAttrs: inactiveLogical, want: true},
		{name: "active wants active", giveFlags: domain.ListPoolsActive, giveAttrs: activeDirAuto, want: true},
		{name: "active drops inactive", giveFlags: domain.ListPoolsActive, giveAttrs: inactiveLogical, want: false},
		{name: "all states", giveFlags: domain.ListPoolsActive | domain.ListPoolsInactive, giveAttrs: inactiveLogical, want: true},
		{name: "transient", giveFlags: domain.ListPoolsTransient, giveAttrs: transientFS, want: true},
		{name: "transient drops persistent", giveFlags: domain.ListPoolsTransient, giveAttrs: activeDirAuto, want: false},
		{name: "no autostart", giveFlags: domain.ListPoolsNoAutostart, giveAttrs: activeDirAuto, want: false},
		{name: "autostart", giveFlags: domain.ListPoolsAutostart, giveAttrs: activeDirAuto, want: true},
		{name: "type or", giveFlags: domain.PoolDir.ListFlag() | domain.PoolLogical.ListFlag(), giveAttrs: inactiveLogical, want: true},
		{name: "type miss", giveFlags: domain.PoolDir.ListFlag(), giveAttrs: transientFS, want: false},
		{name: "groups and", giveFlags: domain.ListPoolsActive | domain.PoolLogical.ListFlag(), giveAttrs: inactiveLogical, want: false},
		{name: "groups and match", giveFlags: domain.ListPoolsActive | domain.ListPoolsPersistent | domain.PoolDir.ListFlag(), giveAttrs: activeDirAuto, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := domain.MatchListFlags(tt.giveFlags, tt.giveAttrs); got != tt.want {
				t.Fatalf("MatchListFlags(%#x) = %v, want %v", tt.giveFlags, got, tt.want)
			}
		})
	}
}
