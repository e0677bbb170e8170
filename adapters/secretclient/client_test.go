package secretclient_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/secretclient"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
)

var (
	uuidVol     = mustUUID("11111111-2222-3333-4444-555555555555")
	uuidCeph    = mustUUID("11111111-2222-3333-4444-777777777777")
	uuidPrivate = mustUUID("11111111-2222-3333-4444-666666666666")
	uuidEmpty   = mustUUID("11111111-2222-3333-4444-888888888888")
	uuidMissing = mustUUID("11111111-2222-3333-4444-000000000000")
	passphrase  = []byte("pass word1")
)

func mustUUID(s string) domain.UUID {
	u, err := domain.ParseUUID(s)
	if err != nil {
		panic(err)
	}
	return u
}

func standardSecrets() []fakeSecret {
	return []fakeSecret{
		{Secret: remote.Secret{UUID: remote.UUID(uuidVol), UsageType: 1, UsageID: "/pool/luks.img"}, value: passphrase, hasValue: true},
		{Secret: remote.Secret{UUID: remote.UUID(uuidCeph), UsageType: 2, UsageID: "client.admin"}, value: []byte("cephkey"), hasValue: true},
		{Secret: remote.Secret{UUID: remote.UUID(uuidPrivate), UsageType: 1, UsageID: "/pool/private.img"}, value: []byte("private2"), hasValue: true, private: true},
		{Secret: remote.Secret{UUID: remote.UUID(uuidEmpty), UsageType: 1, UsageID: "/pool/novalue.img"}},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func newClient(t *testing.T, cfg secretclient.Config, log *logrus.Entry) *secretclient.Client {
	c := secretclient.New(cfg, log)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSecretValue(t *testing.T) {
	t.Parallel()
	d := startFake(t, standardSecrets()...)
	c := newClient(t, secretclient.Config{Socket: d.path}, nil)
	for _, ref := range []domain.SecretRef{domain.SecretByUUID(uuidVol), domain.SecretByUsage("/pool/luks.img")} {
		v, err := c.SecretValue(ctx(t), ref, domain.SecretUsageVolume)
		if err != nil || !bytes.Equal(v, passphrase) {
			t.Errorf("%s: %q, %v", ref, v, err)
		}
	}
	s, err := c.LookupSecret(ctx(t), domain.SecretByUsage("client.admin"), domain.SecretUsageCeph)
	if err != nil || s.UUID != uuidCeph || s.UsageType != domain.SecretUsageCeph || s.UsageID != "client.admin" {
		t.Errorf("ceph lookup: %+v, %v", s, err)
	}
	// Both calls went over the one connection, opened on libvirt's URI.
	if opens, _ := d.counts(); opens != 1 || d.openedURIs()[0] != "secret:///system" {
		t.Errorf("%d opens, URIs %v", opens, d.openedURIs())
	}
}

// TestErrors: what the client returns is the secret driver's error as
// libvirt's storage driver passes it on (codes and texts measured against
// libvirtd 9.0), or libvirt's own error for a secret of the wrong type.
func TestErrors(t *testing.T) {
	t.Parallel()
	d := startFake(t, standardSecrets()...)
	c := newClient(t, secretclient.Config{Socket: d.path}, nil)
	tests := []struct {
		name       string
		giveRef    domain.SecretRef
		giveUsage  domain.SecretUsageType
		wantErr    string
		wantCode   int32
		wantDomain int32
	}{
		{name: "unknown uuid", giveRef: domain.SecretByUUID(uuidMissing), giveUsage: domain.SecretUsageVolume,
			wantErr: "Secret not found: no secret with matching uuid '11111111-2222-3333-4444-000000000000'", wantCode: 66, wantDomain: 30},
		{name: "unknown usage", giveRef: domain.SecretByUsage("/pool/nosuch.img"), giveUsage: domain.SecretUsageVolume,
			wantErr: "Secret not found: no secret with matching usage '/pool/nosuch.img'", wantCode: 66, wantDomain: 30},
		{name: "usage of another type", giveRef: domain.SecretByUsage("client.admin"), giveUsage: domain.SecretUsageVolume,
			wantErr: "Secret not found: no secret with matching usage 'client.admin'", wantCode: 66, wantDomain: 30},
		{name: "wrong type", giveRef: domain.SecretByUUID(uuidCeph), giveUsage: domain.SecretUsageVolume,
			wantErr: "invalid argument: secret with uuid 11111111-2222-3333-4444-777777777777 is of type 'ceph' not expected 'volume' type", wantCode: 8, wantDomain: 0},
		{name: "no value", giveRef: domain.SecretByUUID(uuidEmpty), giveUsage: domain.SecretUsageVolume,
			wantErr: "Secret not found: secret '11111111-2222-3333-4444-888888888888' does not have a value", wantCode: 66, wantDomain: 30},
		{name: "private without token", giveRef: domain.SecretByUUID(uuidPrivate), giveUsage: domain.SecretUsageVolume,
			wantErr: "Invalid secret: secret is private", wantCode: 65, wantDomain: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := c.SecretValue(ctx(t), tt.giveRef, tt.giveUsage)
			checkErr(t, v, err, tt.wantErr, tt.wantCode, tt.wantDomain)
		})
	}
}

func checkErr(t *testing.T, v []byte, err error, wantErr string, wantCode, wantDomain int32) {
	t.Helper()
	if err == nil {
		t.Fatalf("value %q, want error %q", v, wantErr)
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("%T %v is not a domain error", err, err)
	}
	if de.Error() != wantErr || de.Kind.Code() != wantCode || de.ErrorDomain() != wantDomain {
		t.Errorf("got %d/%d %q, want %d/%d %q", de.Kind.Code(), de.ErrorDomain(), de.Error(), wantCode, wantDomain, wantErr)
	}
}

// TestPrivateSecretWithSystemToken: presenting the token libvirt's daemons
// share is what lets libvirt's storage daemon read private secrets; so it does
// ours. A wrong token gets the driver's refusal.
func TestPrivateSecretWithSystemToken(t *testing.T) {
	t.Parallel()
	d := startFake(t, standardSecrets()...)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.token"), filepath.Join(dir, "bad.token")
	if err := os.WriteFile(good, []byte(d.token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Repeat("f", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, secretclient.Config{Socket: d.path, TokenFile: good}, nil)
	v, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidPrivate), domain.SecretUsageVolume)
	if err != nil || string(v) != "private2" {
		t.Fatalf("private secret: %q, %v", v, err)
	}
	_, idents := d.counts()
	fields := map[string]remote.TypedParamValue{}
	for _, p := range idents[0] {
		fields[p.Field] = p.Value
	}
	if fields["system.token"].S != d.token || fields["unix-user-id"].Ul != uint64(os.Getuid()) ||
		fields["process-id"].L != int64(os.Getpid()) {
		t.Errorf("identity sent: %+v", idents[0])
	}

	wrong := newClient(t, secretclient.Config{Socket: d.path, TokenFile: bad}, nil)
	v, err = wrong.SecretValue(ctx(t), domain.SecretByUUID(uuidPrivate), domain.SecretUsageVolume)
	checkErr(t, v, err, "Invalid secret: secret is private", 65, 30)
}

// TestSocketChoice: with no socket configured, virtsecretd's wins when it
// exists, else libvirtd's; with neither, the error names libvirtd's, as
// libvirt's remote driver does.
func TestSocketChoice(t *testing.T) {
	t.Parallel()
	secretd := startFake(t, standardSecrets()...)
	libvirtd := startFake(t, standardSecrets()...)
	missing := filepath.Join(t.TempDir(), "virtsecretd-sock")

	c := newClient(t, secretclient.Config{Candidates: []string{secretd.path, libvirtd.path}}, nil)
	if _, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume); err != nil {
		t.Fatal(err)
	}
	if a, _ := secretd.counts(); a != 1 {
		t.Errorf("virtsecretd's socket opened %d times, want 1", a)
	}
	c = newClient(t, secretclient.Config{Candidates: []string{missing, libvirtd.path}}, nil)
	if _, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume); err != nil {
		t.Fatal(err)
	}
	if b, _ := libvirtd.counts(); b != 1 {
		t.Errorf("libvirtd's socket opened %d times, want 1", b)
	}
	gone := filepath.Join(t.TempDir(), "libvirt-sock")
	c = newClient(t, secretclient.Config{Candidates: []string{missing, gone}}, nil)
	v, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume)
	checkErr(t, v, err, "Failed to connect socket to '"+gone+"': No such file or directory", 38, 7)
}

// TestReconnectsAfterRestart: the secret driver going away and coming back
// costs the next call nothing but a new connection.
func TestReconnectsAfterRestart(t *testing.T) {
	t.Parallel()
	d := startFake(t, standardSecrets()...)
	c := newClient(t, secretclient.Config{Socket: d.path}, nil)
	for round := range 3 {
		v, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume)
		if err != nil || !bytes.Equal(v, passphrase) {
			t.Fatalf("round %d: %q, %v", round, v, err)
		}
		d.restart(t)
	}
	if opens, _ := d.counts(); opens != 3 {
		t.Errorf("%d opens for 3 rounds across restarts", opens)
	}
	// Down for good: a clear error, and the next call tries again.
	d.stop()
	v, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume)
	checkErr(t, v, err, "Failed to connect socket to '"+d.path+"': No such file or directory", 38, 7)
	d.listen(t)
	if _, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume); err != nil {
		t.Errorf("after the driver came back: %v", err)
	}
}

// TestConcurrentReads share the one connection safely (run with -race).
func TestConcurrentReads(t *testing.T) {
	t.Parallel()
	d := startFake(t, standardSecrets()...)
	c := newClient(t, secretclient.Config{Socket: d.path}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := domain.SecretByUUID(uuidVol)
			if i%2 == 1 {
				ref = domain.SecretByUsage("/pool/luks.img")
			}
			v, err := c.SecretValue(ctx(t), ref, domain.SecretUsageVolume)
			if err == nil && !bytes.Equal(v, passphrase) {
				err = errors.New("wrong value")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestNoValueInLogs: at debug level the client logs its connections and
// reads, never a value, and no error carries one.
func TestNoValueInLogs(t *testing.T) {
	t.Parallel()
	d := startFake(t, standardSecrets()...)
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetLevel(logrus.DebugLevel)
	c := newClient(t, secretclient.Config{Socket: d.path}, logrus.NewEntry(l))
	v, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume)
	if err != nil {
		t.Fatal(err)
	}
	clear(v)
	_, err = c.SecretValue(ctx(t), domain.SecretByUUID(uuidCeph), domain.SecretUsageVolume)
	if err == nil || strings.Contains(err.Error(), "cephkey") {
		t.Errorf("error %v", err)
	}
	d.restart(t)
	if _, err := c.SecretValue(ctx(t), domain.SecretByUUID(uuidVol), domain.SecretUsageVolume); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "secret value read") {
		t.Fatalf("no debug log at all, the test would prove nothing:\n%s", out)
	}
	for _, s := range []string{string(passphrase), "cephkey"} {
		if strings.Contains(out, s) {
			t.Errorf("log holds a secret value %q:\n%s", s, out)
		}
	}
}
