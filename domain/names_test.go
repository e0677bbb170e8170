package domain_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// checkErr compares an error with the wanted full message and kind ("" = no error).
func checkErr(t *testing.T, err error, wantErr string, wantKind domain.Kind) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %q", wantErr)
	}
	if err.Error() != wantErr {
		t.Fatalf("error = %q, want %q", err.Error(), wantErr)
	}
	if wantKind != 0 && domain.KindOf(err) != wantKind {
		t.Fatalf("kind = %v, want %v", domain.KindOf(err), wantKind)
	}
}

func TestValidatePoolName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveName string
		wantErr  string
	}{
		{name: "plain", giveName: "default"},
		{name: "dots inside", giveName: "a.b..c"},
		{name: "empty", giveName: "", wantErr: "XML error: missing pool source name element"},
		{name: "slash", giveName: "sem/x", wantErr: "XML error: name sem/x cannot contain '/'"},
		{name: "dot", giveName: ".", wantErr: "XML error: name . is not allowed for a storage pool"},
		{name: "dotdot", giveName: "..", wantErr: "XML error: name .. is not allowed for a storage pool"},
		{name: "tab", giveName: "a\tb", wantErr: `XML error: name "a\tb" cannot contain control character 0x09`},
		{name: "del", giveName: "a\x7f", wantErr: `XML error: name "a\x7f" cannot contain control character 0x7f`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.ValidatePoolName(tt.giveName), tt.wantErr, domain.KindXMLError)
		})
	}
	// A newline gets libvirt's own code, domain and text (measured on libvirtd).
	err := domain.ValidatePoolName("a\nb")
	checkErr(t, err, "invalid char in name: \n", domain.KindXMLDetail)
	if d := domain.AsError(err).ErrorDomain(); d != domain.FromXML {
		t.Errorf("newline error domain %d, want %d", d, domain.FromXML)
	}
}

func TestValidateVolName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveName string
		wantErr  string
		wantKind domain.Kind
	}{
		{name: "plain", giveName: "disk.qcow2"},
		{name: "dotfile", giveName: ".hidden"},
		{name: "empty", giveName: "", wantErr: "XML error: missing volume name element", wantKind: domain.KindXMLError},
		{name: "slash", giveName: "a/b", wantErr: "Requested operation is not valid: volume name 'a/b' cannot contain '/'", wantKind: domain.KindOperationInvalid},
		{name: "dotdot is the backend's", giveName: ".."},
		{name: "tab", giveName: "a\tb", wantErr: `Requested operation is not valid: volume name "a\tb" cannot contain control character 0x09`, wantKind: domain.KindOperationInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.ValidateVolName(tt.giveName), tt.wantErr, tt.wantKind)
		})
	}
}

func TestErrMissingBackendUsesLibvirtNumbering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveType domain.PoolType
		wantErr  string
	}{
		{name: "rbd", giveType: domain.PoolRBD, wantErr: "internal error: missing backend for pool type 9 (rbd)"},
		{name: "iscsi-direct", giveType: domain.PoolISCSIDirect, wantErr: "internal error: missing backend for pool type 6 (iscsi-direct)"},
		{name: "scsi", giveType: domain.PoolSCSI, wantErr: "internal error: missing backend for pool type 7 (scsi)"},
		{name: "sheepdog", giveType: domain.PoolSheepdog, wantErr: "internal error: missing backend for pool type 10 (sheepdog)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.ErrMissingBackend(tt.giveType), tt.wantErr, domain.KindInternal)
		})
	}
}
