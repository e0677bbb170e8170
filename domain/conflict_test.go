package domain_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

func uuidOf(b byte) domain.UUID {
	var u domain.UUID
	u[15] = b
	return u
}

func dirPool(name string, u byte, target string) *domain.PoolDef {
	return &domain.PoolDef{Type: domain.PoolDir, Name: name, UUID: uuidOf(u), Target: domain.PoolTarget{Path: target}}
}

func TestCheckPoolDuplicate(t *testing.T) {
	t.Parallel()
	existing := []*domain.PoolDef{dirPool("p1", 1, "/a"), dirPool("p2", 2, "/b")}
	tests := []struct {
		name    string
		giveDef *domain.PoolDef
		wantErr string
	}{
		{name: "new", giveDef: dirPool("p3", 3, "/c")},
		{name: "redefine same uuid", giveDef: dirPool("p1", 1, "/z")},
		{name: "name with other uuid", giveDef: dirPool("p1", 9, "/z"),
			wantErr: "operation failed: pool 'p1' already exists with uuid 00000000-0000-0000-0000-000000000001"},
		{name: "uuid with other name", giveDef: dirPool("other", 2, "/z"),
			wantErr: "operation failed: pool 'p2' is already defined with uuid 00000000-0000-0000-0000-000000000002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.CheckPoolDuplicate(tt.giveDef, existing), tt.wantErr, domain.KindOperationFailed)
		})
	}
}

func TestCheckSourceConflict(t *testing.T) {
	t.Parallel()
	fs := &domain.PoolDef{Type: domain.PoolFS, Name: "fs1", UUID: uuidOf(3), Target: domain.PoolTarget{Path: "/mnt/fs1"},
		Source: domain.PoolSource{Devices: []domain.SourceDevice{{Path: "/dev/loop0"}}}}
	nfs := &domain.PoolDef{Type: domain.PoolNetFS, Name: "nfs1", UUID: uuidOf(4), Target: domain.PoolTarget{Path: "/mnt/nfs1"},
		Source: domain.PoolSource{Hosts: []domain.SourceHost{{Name: "srv"}}, Dir: "/export"}}
	vg := &domain.PoolDef{Type: domain.PoolLogical, Name: "vg1", UUID: uuidOf(5),
		Source: domain.PoolSource{Devices: []domain.SourceDevice{{Path: "/dev/sdb"}}}}
	iscsi := func(name, host, iqn, initiator string) *domain.PoolDef {
		return &domain.PoolDef{Type: domain.PoolISCSI, Name: name, Target: domain.PoolTarget{Path: "/dev/disk/by-path"},
			Source: domain.PoolSource{Hosts: []domain.SourceHost{{Name: host}}, Devices: []domain.SourceDevice{{Path: iqn}}, Initiator: initiator}}
	}
	scsi := func(name string, a domain.SourceAdapter) *domain.PoolDef {
		return &domain.PoolDef{Type: domain.PoolSCSI, Name: name, Target: domain.PoolTarget{Path: "/dev/disk/by-path"}, Source: domain.PoolSource{Adapter: &a}}
	}
	addr := &domain.PCIAddress{Bus: 5, Slot: 31, Function: 2}
	existing := []*domain.PoolDef{dirPool("d1", 1, "/var/lib/images"), fs, nfs, vg,
		iscsi("is1", "h1", "iqn.t1", ""), iscsi("is2", "h1", "iqn.t2", "iqn.init"),
		scsi("sc1", domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "host3"}),
		scsi("sc2", domain.SourceAdapter{Type: domain.AdapterSCSIHost, ParentAddr: addr, UniqueID: 1}),
		scsi("sc3", domain.SourceAdapter{Type: domain.AdapterFCHost, WWNN: "20000000c9831b4b", WWPN: "10000000c9831b4b"}),
	}
	tests := []struct {
		name    string
		giveDef *domain.PoolDef
		wantErr string
	}{
		{name: "other dir", giveDef: dirPool("d2", 2, "/srv/images")},
		{name: "same dir", giveDef: dirPool("d2", 2, "/var/lib/images"), wantErr: "operation failed: Storage source conflict with pool: 'd1'"},
		{name: "trailing slash", giveDef: dirPool("d2", 2, "/var/lib/images/"), wantErr: "operation failed: Storage source conflict with pool: 'd1'"},
		{name: "double slash", giveDef: dirPool("d2", 2, "/var//lib/images"), wantErr: "operation failed: Storage source conflict with pool: 'd1'"},
		{name: "redefine itself", giveDef: dirPool("d1", 1, "/var/lib/images")},
		{name: "other type same path", giveDef: &domain.PoolDef{Type: domain.PoolFS, Name: "x", Target: domain.PoolTarget{Path: "/var/lib/images"},
			Source: domain.PoolSource{Devices: []domain.SourceDevice{{Path: "/dev/loop9"}}}}},
		{name: "fs same device", giveDef: &domain.PoolDef{Type: domain.PoolFS, Name: "fs2", Target: domain.PoolTarget{Path: "/mnt/other"},
			Source: domain.PoolSource{Devices: []domain.SourceDevice{{Path: "/dev/loop0"}}}}, wantErr: "operation failed: Storage source conflict with pool: 'fs1'"},
		{name: "netfs same export", giveDef: &domain.PoolDef{Type: domain.PoolNetFS, Name: "nfs2", Target: domain.PoolTarget{Path: "/mnt/nfs2"},
			Source: domain.PoolSource{Hosts: []domain.SourceHost{{Name: "srv"}}, Dir: "/export/"}}, wantErr: "operation failed: Storage source conflict with pool: 'nfs1'"},
		{name: "netfs other host", giveDef: &domain.PoolDef{Type: domain.PoolNetFS, Name: "nfs2", Target: domain.PoolTarget{Path: "/mnt/nfs2"},
			Source: domain.PoolSource{Hosts: []domain.SourceHost{{Name: "srv2"}}, Dir: "/export"}}},
		{name: "logical same vg name", giveDef: &domain.PoolDef{Type: domain.PoolLogical, Name: "x", Source: domain.PoolSource{Name: "vg1"}},
			wantErr: "operation failed: Storage source conflict with pool: 'vg1'"},
		// iSCSI: the target and initiator count, not the portal (libvirt's pool-iscsi-multiiqn).
		{name: "iscsi same target elsewhere", giveDef: iscsi("x", "h2", "iqn.t1", ""), wantErr: "operation failed: Storage source conflict with pool: 'is1'"},
		{name: "iscsi same target other initiator", giveDef: iscsi("x", "h1", "iqn.t1", "iqn.other")},
		{name: "iscsi same target same initiator", giveDef: iscsi("x", "h1", "iqn.t2", "iqn.init"), wantErr: "operation failed: Storage source conflict with pool: 'is2'"},
		{name: "scsi host by the other name", giveDef: scsi("x", domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "scsi_host3"}), wantErr: "operation failed: Storage source conflict with pool: 'sc1'"},
		{name: "scsi other host", giveDef: scsi("x", domain.SourceAdapter{Type: domain.AdapterSCSIHost, Name: "host4"})},
		{name: "scsi same parent address", giveDef: scsi("x", domain.SourceAdapter{Type: domain.AdapterSCSIHost, ParentAddr: &domain.PCIAddress{Bus: 5, Slot: 31, Function: 2}, UniqueID: 1}),
			wantErr: "operation failed: Storage source conflict with pool: 'sc2'"},
		{name: "scsi same parent, other unique_id", giveDef: scsi("x", domain.SourceAdapter{Type: domain.AdapterSCSIHost, ParentAddr: addr, UniqueID: 2})},
		{name: "fc same wwns", giveDef: scsi("x", domain.SourceAdapter{Type: domain.AdapterFCHost, WWNN: "20000000c9831b4b", WWPN: "10000000c9831b4b", Parent: "scsi_host9"}),
			wantErr: "operation failed: Storage source conflict with pool: 'sc3'"},
		{name: "logical other vg", giveDef: &domain.PoolDef{Type: domain.PoolLogical, Name: "vg2", Source: domain.PoolSource{Devices: []domain.SourceDevice{{Path: "/dev/sdc"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.CheckSourceConflict(tt.giveDef, existing), tt.wantErr, domain.KindOperationFailed)
		})
	}
}

func TestSCSIHostNumber(t *testing.T) {
	t.Parallel()
	for give, want := range map[string]int64{"host0": 0, "host12": 12, "scsi_host5": 5, "host": -1, "hostX": -1, "scsi_": -1, "xhost1": -1, "host99999999999": -1} {
		n, ok := domain.SCSIHostNumber(give)
		if (want < 0) == ok || (ok && int64(n) != want) {
			t.Errorf("SCSIHostNumber(%q) = %d, %v; want %d", give, n, ok, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		givePath string
		want     string
	}{
		{name: "plain", givePath: "/a/b", want: "/a/b"},
		{name: "double", givePath: "//a//b", want: "/a/b"},
		{name: "trailing", givePath: "/a/b/", want: "/a/b"},
		{name: "root", givePath: "/", want: "/"},
		{name: "dotdot kept", givePath: "/tmp/x/../x/f", want: "/tmp/x/../x/f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := domain.CleanPath(tt.givePath); got != tt.want {
				t.Fatalf("CleanPath(%q) = %q, want %q", tt.givePath, got, tt.want)
			}
		})
	}
}
