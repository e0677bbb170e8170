package luks_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/luks"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var secretUUID = domain.UUID{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55}

func encLUKS(mod func(e *domain.VolEncryption)) domain.VolEncryption {
	e := domain.VolEncryption{Format: "luks", Secrets: []domain.SecretRef{domain.SecretByUUID(secretUUID)}}
	if mod != nil {
		mod(&e)
	}
	return e
}

// TestCreateOptions: the -o encryption options of libvirt's
// storagevolxml2argv luks.argv, luks-cipher.argv and qcow2-luks.argv.
func TestCreateOptions(t *testing.T) {
	t.Parallel()
	cipher := func(e *domain.VolEncryption) {
		e.Cipher = domain.EncryptionCipher{Name: "serpent", Size: 256, Mode: "cbc", Hash: "sha256"}
		e.Ivgen = domain.EncryptionIvgen{Name: "plain64", Hash: "sha256"}
	}
	tests := []struct {
		name     string
		giveFmt  string
		giveEnc  domain.VolEncryption
		wantOpts string
	}{
		{name: "luks", giveFmt: "raw", giveEnc: encLUKS(nil), wantOpts: "key-secret=LuksDemo.img_encrypt0"},
		{name: "luks-cipher", giveFmt: "raw", giveEnc: encLUKS(cipher),
			wantOpts: "key-secret=LuksDemo.img_encrypt0,cipher-alg=serpent-256,cipher-mode=cbc,hash-alg=sha256,ivgen-alg=plain64,ivgen-hash-alg=sha256"},
		{name: "qcow2-luks", giveFmt: "qcow2", giveEnc: encLUKS(nil), wantOpts: "encrypt.format=luks,encrypt.key-secret=LuksDemo.img_encrypt0"},
		{name: "qcow2-luks-cipher", giveFmt: "qcow2", giveEnc: encLUKS(cipher),
			wantOpts: "encrypt.format=luks,encrypt.key-secret=LuksDemo.img_encrypt0,encrypt.cipher-alg=serpent-256,encrypt.cipher-mode=cbc,encrypt.hash-alg=sha256,encrypt.ivgen-alg=plain64,encrypt.ivgen-hash-alg=sha256"},
		{name: "ivgen without hash, cipher without mode", giveFmt: "raw", giveEnc: encLUKS(func(e *domain.VolEncryption) {
			e.Cipher = domain.EncryptionCipher{Name: "aes", Size: 128}
			e.Ivgen = domain.EncryptionIvgen{Name: "essiv"}
		}), wantOpts: "key-secret=LuksDemo.img_encrypt0,cipher-alg=aes-128,ivgen-alg=essiv"},
		{name: "commas escaped", giveFmt: "raw", giveEnc: encLUKS(func(e *domain.VolEncryption) {
			e.Cipher = domain.EncryptionCipher{Name: "a,b", Size: 1, Hash: "x,y"}
		}), wantOpts: "key-secret=LuksDemo.img_encrypt0,cipher-alg=a,,b-1,hash-alg=x,,y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := strings.Join(luks.CreateOptions(tt.giveFmt, luks.Alias("LuksDemo.img"), tt.giveEnc), ",")
			if got != tt.wantOpts {
				t.Errorf("got  %s\nwant %s", got, tt.wantOpts)
			}
		})
	}
}

func TestCommandPieces(t *testing.T) {
	t.Parallel()
	if got := luks.SecretObject("v_encrypt0", "/run/a,b/key"); got != "secret,id=v_encrypt0,file=/run/a,,b/key" {
		t.Errorf("SecretObject = %s", got)
	}
	if got := luks.ConvertImage("luks", "raw", "/p/v.img", "v.img_encrypt0"); got != "driver=luks,file.filename=/p/v.img,key-secret=v.img_encrypt0" {
		t.Errorf("ConvertImage luks = %s", got)
	}
	if got := luks.ConvertImage("qcow2", "qcow2", "/p/q", "q_encrypt0"); got != "driver=qcow2,file.filename=/p/q,encrypt.key-secret=q_encrypt0" {
		t.Errorf("ConvertImage qcow2 = %s", got)
	}
	if got := luks.ConvertImage("raw", "raw", "/p/plain", ""); got != "driver=raw,file.filename=/p/plain" {
		t.Errorf("ConvertImage plain = %s", got)
	}
	// Re-encrypting a copy: the new volume's secret object comes first, as
	// libvirt writes them, and each side names its own.
	src := luks.ConvertSide{Volume: "a", Driver: "luks", Format: "raw", Path: "/p/a", Key: &luks.KeyFile{Path: "/k/a"}}
	dst := luks.ConvertSide{Volume: "b", Driver: "qcow2", Format: "qcow2", Path: "/p/b", Key: &luks.KeyFile{Path: "/k/b"}}
	want := "convert --image-opts -n --target-image-opts" +
		" --object secret,id=b_encrypt0,file=/k/b --object secret,id=a_encrypt0,file=/k/a" +
		" driver=luks,file.filename=/p/a,key-secret=a_encrypt0" +
		" driver=qcow2,file.filename=/p/b,encrypt.key-secret=b_encrypt0"
	if got := strings.Join(luks.ConvertArgs(src, dst), " "); got != want {
		t.Errorf("ConvertArgs re-encrypting\n got %s\nwant %s", got, want)
	}
	// Decrypting: only the source has a secret.
	dst = luks.ConvertSide{Volume: "b", Driver: "raw", Format: "raw", Path: "/p/b"}
	want = "convert --image-opts -n --target-image-opts --object secret,id=a_encrypt0,file=/k/a" +
		" driver=luks,file.filename=/p/a,key-secret=a_encrypt0 driver=raw,file.filename=/p/b"
	if got := strings.Join(luks.ConvertArgs(src, dst), " "); got != want {
		t.Errorf("ConvertArgs decrypting\n got %s\nwant %s", got, want)
	}
	if got := luks.ResizeImage("raw", "/p/a,b", "a_encrypt0"); got != "driver=luks,key-secret=a_encrypt0,file.filename=/p/a,,b" {
		t.Errorf("ResizeImage raw = %s", got)
	}
	if got := luks.ResizeImage("qcow2", "/p/q", "q_encrypt0"); got != "driver=qcow2,encrypt.key-secret=q_encrypt0,file.filename=/p/q" {
		t.Errorf("ResizeImage qcow2 = %s", got)
	}
}

// TestCheckCreate: libvirt's refusals, measured against libvirtd 9.0.
func TestCheckCreate(t *testing.T) {
	t.Parallel()
	two := encLUKS(func(e *domain.VolEncryption) { e.Secrets = append(e.Secrets, e.Secrets[0]) })
	none := encLUKS(func(e *domain.VolEncryption) { e.Secrets = nil })
	tests := []struct {
		name      string
		giveFmt   string
		giveEnc   domain.VolEncryption
		giveInFmt string
		giveIn    domain.VolEncryption
		wantErr   string
		wantCode  int32
	}{
		{name: "luks raw", giveFmt: "raw", giveEnc: encLUKS(nil)},
		{name: "luks qcow2", giveFmt: "qcow2", giveEnc: encLUKS(nil)},
		{name: "decrypting copy", giveFmt: "raw", giveInFmt: "raw", giveIn: encLUKS(nil)},
		{name: "qcow encryption on qcow2", giveFmt: "qcow2", giveEnc: domain.VolEncryption{Format: "qcow"},
			wantErr: "unsupported configuration: creation of qcow2 encrypted image is not supported", wantCode: 67},
		{name: "default encryption on qcow2", giveFmt: "qcow2", giveEnc: domain.VolEncryption{Format: "default"},
			wantErr: "unsupported configuration: creation of qcow2 encrypted image is not supported", wantCode: 67},
		{name: "qcow encryption on raw", giveFmt: "raw", giveEnc: domain.VolEncryption{Format: "qcow"},
			wantErr: "internal error: Only luks encryption is supported for raw files", wantCode: 1},
		{name: "luks2 on raw", giveFmt: "raw", giveEnc: domain.VolEncryption{Format: "luks2"},
			wantErr: "internal error: Only luks encryption is supported for raw files", wantCode: 1},
		{name: "luks on vmdk", giveFmt: "vmdk", giveEnc: encLUKS(nil),
			wantErr: "unsupported configuration: volume encryption unsupported with format vmdk", wantCode: 67},
		{name: "luks2 on qcow2", giveFmt: "qcow2", giveEnc: domain.VolEncryption{Format: "luks2"},
			wantErr: "unsupported configuration: unsupported volume encryption format 3", wantCode: 67},
		{name: "input not luks", giveFmt: "raw", giveInFmt: "qcow2", giveIn: domain.VolEncryption{Format: "qcow"},
			wantErr: "unsupported configuration: encryption format of inputvol must be LUKS", wantCode: 67},
		{name: "two secrets", giveFmt: "raw", giveEnc: two, wantErr: "XML error: too many secrets for luks encryption", wantCode: 27},
		{name: "no secret", giveFmt: "qcow2", giveEnc: none, wantErr: "XML error: no secret provided for luks encryption", wantCode: 27},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := luks.CheckCreate(tt.giveFmt, tt.giveEnc, tt.giveInFmt, tt.giveIn)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Error() != tt.wantErr || de.Kind.Code() != tt.wantCode || de.ErrorDomain() != 18 {
				t.Errorf("got %v, want %d %q", err, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestStage: the passphrase goes to a 0600 file in a 0700 directory of its
// own, the value handed out by the secret driver is zeroed at once, and
// Remove leaves nothing behind.
func TestStage(t *testing.T) {
	t.Parallel()
	secrets := &testkit.FakeSecrets{}
	secrets.Add(secretUUID, domain.SecretUsageVolume, "/p/v.img", []byte("pass word1"))
	dir := filepath.Join(t.TempDir(), "run")
	keys := &luks.Keys{Store: secrets, Dir: dir}
	kf, err := keys.Stage(context.Background(), "pool", "v.img", encLUKS(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if zeroed, n := secrets.AllZeroed(); !zeroed || n != 1 {
		t.Errorf("value handed out %d times, zeroed %v", n, zeroed)
	}
	b, err := os.ReadFile(kf.Path)
	if err != nil || string(b) != "pass word1" {
		t.Fatalf("key file %q, %v", b, err)
	}
	fi, err := os.Stat(kf.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v", fi.Mode(), err)
	}
	di, err := os.Stat(filepath.Dir(kf.Path))
	if err != nil || di.Mode().Perm() != 0o700 || !strings.HasPrefix(filepath.Base(filepath.Dir(kf.Path)), "pool.v.img.secret.") {
		t.Errorf("key dir %s mode %v, %v", filepath.Dir(kf.Path), di.Mode(), err)
	}
	kf.Remove()
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("left behind: %v, %v", ents, err)
	}
}

func TestStageErrors(t *testing.T) {
	t.Parallel()
	secrets := &testkit.FakeSecrets{}
	secrets.Add(secretUUID, domain.SecretUsageCeph, "client.admin", []byte("k"))
	dir := t.TempDir()
	keys := &luks.Keys{Store: secrets, Dir: dir}
	ctx := context.Background()
	_, err := keys.Stage(ctx, "p", "v", encLUKS(func(e *domain.VolEncryption) { e.Secrets = nil }), nil)
	if err == nil || err.Error() != "invalid argument: A single <secret type='passphrase'...> element is expected in encryption description" {
		t.Errorf("no secret: %v", err)
	}
	_, err = keys.Stage(ctx, "p", "v", encLUKS(nil), nil)
	if err == nil || err.Error() != "invalid argument: secret with uuid 11111111-2222-3333-4444-555555555555 is of type 'ceph' not expected 'volume' type" {
		t.Errorf("wrong type: %v", err)
	}
	secrets.Err = &domain.Error{Kind: domain.KindSystem, Domain: domain.FromRPC, Detail: "Failed to connect socket to '/x': No such file or directory"}
	_, err = keys.Stage(ctx, "p", "v", encLUKS(nil), nil)
	if err == nil || err.Error() != "Failed to connect socket to '/x': No such file or directory" {
		t.Errorf("driver down: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	timing := &ports.ExitError{Argv: []string{"qemu-img"}, Code: 1, Stderr: "qemu-img: /p/v: Unable to get accurate CPU usage\n"}
	other := &ports.ExitError{Argv: []string{"qemu-img"}, Code: 1, Stderr: "qemu-img: /p/v: Data from secret v_encrypt0 is not valid UTF-8\n"}
	runs := 0
	err := luks.Retry(context.Background(), nil, func() error {
		runs++
		if runs < 3 {
			return timing
		}
		return nil
	})
	if err != nil || runs != 3 {
		t.Errorf("timing failures: %d runs, %v", runs, err)
	}
	runs = 0
	err = luks.Retry(context.Background(), nil, func() error { runs++; return other })
	if err != other || runs != 1 {
		t.Errorf("other failure: %d runs, %v", runs, err)
	}
	runs = 0
	err = luks.Retry(context.Background(), nil, func() error { runs++; return timing })
	if err != timing || runs != 10 {
		t.Errorf("persistent timing failure: %d runs, %v", runs, err)
	}
}

func TestLoadDefault(t *testing.T) {
	t.Parallel()
	secrets := &testkit.FakeSecrets{}
	secrets.Add(secretUUID, domain.SecretUsageVolume, "/p/byusage.img", []byte("x"))
	keys := &luks.Keys{Store: secrets}
	ctx := context.Background()
	vol := &domain.VolDef{Name: "byusage.img", Target: domain.VolTarget{Path: "/p/byusage.img", Encryption: domain.VolEncryption{Format: "luks"}}}
	keys.LoadDefault(ctx, nil, vol)
	if s := vol.Target.Encryption.Secrets; len(s) != 1 || !s[0].ByUUID || s[0].UUID != secretUUID {
		t.Errorf("secrets %+v", s)
	}
	other := &domain.VolDef{Name: "o.img", Target: domain.VolTarget{Path: "/p/o.img", Encryption: domain.VolEncryption{Format: "luks"}}}
	keys.LoadDefault(ctx, nil, other)
	if len(other.Target.Encryption.Secrets) != 0 {
		t.Errorf("found a secret for a path no secret names: %+v", other.Target.Encryption)
	}
	secrets.Err = errors.New("down")
	keys.LoadDefault(ctx, nil, other)
	if len(other.Target.Encryption.Secrets) != 0 {
		t.Errorf("driver down: %+v", other.Target.Encryption)
	}
}
