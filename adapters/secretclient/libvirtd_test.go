package secretclient_test

import (
	"bytes"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/secretclient"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestAgainstLibvirtd reads secrets from libvirtd 9.0's secret driver, as a
// monolithic Debian host has it: public and private values (the private one
// through libvirt's system token, refused without it), value bytes that are
// not UTF-8 come back as they are, libvirt's errors, and a restart of
// libvirtd between two reads.
func TestAgainstLibvirtd(t *testing.T) {
	a := testkit.StartAnchor(t)
	binary := []byte{0xff, 0xfe, 0x00, 'a', 'b', 'c'}
	a.DefineSecret(t, uuidVol.String(), testkit.VolumeUsage("/pool/luks.img"), false, passphrase)
	a.DefineSecret(t, uuidPrivate.String(), testkit.VolumeUsage("/pool/private.img"), true, []byte("private2"))
	a.DefineSecret(t, uuidCeph.String(), "<usage type='ceph'><name>client.admin</name></usage>", false, []byte("cephkey"))
	a.DefineSecret(t, uuidEmpty.String(), testkit.VolumeUsage("/pool/novalue.img"), false, nil)
	uuidBinary := mustUUID("11111111-2222-3333-4444-999999999999")
	a.DefineSecret(t, uuidBinary.String(), testkit.VolumeUsage("/pool/binary.img"), false, binary)

	c := newClient(t, secretclient.Config{Socket: a.SocketPath(), URI: "secret:///system", TokenFile: a.SystemTokenFile()}, nil)
	values := []struct {
		ref  domain.SecretRef
		want []byte
	}{
		{domain.SecretByUUID(uuidVol), passphrase},
		{domain.SecretByUsage("/pool/luks.img"), passphrase},
		{domain.SecretByUUID(uuidPrivate), []byte("private2")},
		{domain.SecretByUUID(uuidBinary), binary},
	}
	for _, v := range values {
		got, err := c.SecretValue(ctx(t), v.ref, domain.SecretUsageVolume)
		if err != nil || !bytes.Equal(got, v.want) {
			t.Errorf("%s: %q, %v, want %q", v.ref, got, err, v.want)
		}
	}
	errs := []struct {
		ref        domain.SecretRef
		wantErr    string
		wantCode   int32
		wantDomain int32
	}{
		{domain.SecretByUUID(uuidMissing), "Secret not found: no secret with matching uuid '11111111-2222-3333-4444-000000000000'", 66, 30},
		{domain.SecretByUsage("/pool/nosuch.img"), "Secret not found: no secret with matching usage '/pool/nosuch.img'", 66, 30},
		{domain.SecretByUUID(uuidCeph), "invalid argument: secret with uuid 11111111-2222-3333-4444-777777777777 is of type 'ceph' not expected 'volume' type", 8, 0},
		{domain.SecretByUUID(uuidEmpty), "Secret not found: secret '11111111-2222-3333-4444-888888888888' does not have a value", 66, 30},
	}
	for _, e := range errs {
		v, err := c.SecretValue(ctx(t), e.ref, domain.SecretUsageVolume)
		checkErr(t, v, err, e.wantErr, e.wantCode, e.wantDomain)
	}
	noToken := newClient(t, secretclient.Config{Socket: a.SocketPath()}, nil)
	v, err := noToken.SecretValue(ctx(t), domain.SecretByUUID(uuidPrivate), domain.SecretUsageVolume)
	checkErr(t, v, err, "Invalid secret: secret is private", 65, 30)

	// Ephemeral secrets do not survive the restart: a "not found" is an
	// answer from the new libvirtd over a new connection.
	a.Restart(t)
	v, err = c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume)
	checkErr(t, v, err, "Secret not found: no secret with matching uuid '11111111-2222-3333-4444-555555555555'", 66, 30)
}
