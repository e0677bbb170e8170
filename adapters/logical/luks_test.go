package logical_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/adapters/luks"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var (
	lvSecret  = domain.UUID{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55}
	srcSecret = domain.UUID{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66}
)

// luksLVBackend is a logical backend over a scripted runner with an
// in-memory secret driver; it checks at the end that no key file is left,
// every passphrase buffer was zeroed, and no passphrase reached an argv.
func luksLVBackend(t *testing.T, calls ...testkit.FakeCall) (*logical.Backend, *testkit.FakeRunner, *testkit.FakeSecrets) {
	f := testkit.NewFakeRunner(t, calls...)
	secrets := &testkit.FakeSecrets{}
	secrets.Add(lvSecret, domain.SecretUsageVolume, "/nowhere", []byte("lv pass"))
	secrets.Add(srcSecret, domain.SecretUsageVolume, "/elsewhere", []byte("src pass"))
	keys := t.TempDir()
	b := logical.New(f, testkit.QuietLog())
	b.Keys = &luks.Keys{Store: secrets, Dir: keys}
	t.Cleanup(func() {
		if ents, _ := os.ReadDir(keys); len(ents) != 0 {
			t.Errorf("key files left: %v", ents)
		}
		if zeroed, _ := secrets.AllZeroed(); !zeroed {
			t.Error("a passphrase buffer was not zeroed")
		}
		for _, argv := range f.RunLog() {
			if s := strings.Join(argv, " "); strings.Contains(s, "lv pass") || strings.Contains(s, "src pass") {
				t.Errorf("passphrase in argv %s", s)
			}
		}
	})
	return b, f, secrets
}

func encryptedLV(t *testing.T, name string, u domain.UUID) *domain.VolDef {
	v := vol(name, 8<<20, 8<<20)
	v.Target.Perms = domain.UnsetPerms()
	v.Target.Encryption = domain.VolEncryption{Format: "luks", Secrets: []domain.SecretRef{domain.SecretByUUID(u)}}
	return v
}

// keyChecked is a scripted qemu-img that finds its key files 0600 and
// holding the passphrases.
func keyChecked(t *testing.T) func(ports.Command) error {
	return func(cmd ports.Command) error {
		for i, a := range cmd.Args {
			if a != "--object" {
				continue
			}
			_, file, _ := strings.Cut(cmd.Args[i+1], ",file=")
			file = strings.ReplaceAll(file, ",,", ",") // qemu's escaping of commas
			fi, err := os.Stat(file)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file %s: %v %v", file, fi, err)
				continue
			}
			b, _ := os.ReadFile(file)
			if string(b) != "lv pass" && string(b) != "src pass" {
				t.Errorf("key file holds %q", b)
			}
		}
		return nil
	}
}

func TestEncryptedLV(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	vg := logical.Source{VG: "capvg"}

	t.Run("create: lvcreate with room for the header, then the LUKS header", func(t *testing.T) {
		v := encryptedLV(t, "lv1", lvSecret)
		if err := logical.New(testkit.NewFakeRunner(t), nil).PrepareVol(capvgPool(), v); err != nil {
			t.Fatal(err)
		}
		v.Target.Path = fakeDevice(t, 4096)
		b, f, _ := luksLVBackend(t)
		f.Expect(logical.LVCreateArgv(vg, v)...)
		f.Expect("qemu-img", "create", "-f", "luks", "--object", testkit.AnyArg, "-o", "key-secret=lv1_encrypt0", v.Target.Path, "8192K").Do = keyChecked(t)
		f.Expect(logical.LVSArgv(vg)...).Stdout = "  lv1##dzt8WR-HlMe-Cfbu-oqKB-GumG-NsoO-QhthVP#/dev/loop0(0)#linear#1#12582912#4194304#12582912#-wi-a-----\n"
		if err := b.BuildVol(ctx, capvgPool(), v, 0); err != nil {
			t.Fatal(err)
		}
		if got := f.RunLog()[0]; strings.Join(got, " ") != "lvcreate --name lv1 -L 10240K capvg --yes" {
			t.Errorf("lvcreate = %v", got)
		}
		// The refresh after create keeps the encryption the volume was made
		// with; the capacity is the LV's, header room included, as libvirt's.
		if err := b.RefreshVol(ctx, capvgPool(), v); err != nil {
			t.Fatal(err)
		}
		if e := v.Target.Encryption; e.Format != "luks" || len(e.Secrets) != 1 || e.Secrets[0].UUID != lvSecret || v.Capacity != 12<<20 {
			t.Errorf("after refresh: encryption %+v, capacity %d", e, v.Capacity)
		}
	})

	t.Run("a secret that cannot be had creates nothing", func(t *testing.T) {
		cephSecret := domain.UUID{0xce}
		noValue := domain.UUID{0xaa}
		tests := []struct {
			name     string
			giveRef  domain.SecretRef
			giveDown bool
			wantKind domain.Kind
			wantErr  string
		}{
			{"unknown uuid", domain.SecretByUUID(domain.UUID{0xee}), false, domain.KindNoSecret,
				"Secret not found: no secret with matching uuid 'ee000000-0000-0000-0000-000000000000'"},
			{"unknown usage", domain.SecretRef{Usage: "/dev/capvg/nosuch"}, false, domain.KindNoSecret,
				"Secret not found: no secret with matching usage '/dev/capvg/nosuch'"},
			{"a ceph key", domain.SecretByUUID(cephSecret), false, domain.KindInvalidArg,
				"secret with uuid ce000000-0000-0000-0000-000000000000 is of type 'ceph' not expected 'volume' type"},
			{"no value", domain.SecretByUUID(noValue), false, domain.KindNoSecret, "does not have a value"},
			{"secret driver down", domain.SecretByUUID(lvSecret), true, domain.KindSystem,
				"Failed to connect socket to '/run/libvirt/virtsecretd-sock': No such file or directory"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				v := encryptedLV(t, "lv2", lvSecret)
				v.Target.Encryption.Secrets = []domain.SecretRef{tt.giveRef}
				v.Target.Path = "/dev/capvg/lv2"
				b, f, secrets := luksLVBackend(t)
				secrets.Add(cephSecret, domain.SecretUsageCeph, "client.admin", []byte("ceph key"))
				secrets.Add(noValue, domain.SecretUsageVolume, "/novalue", nil)
				if tt.giveDown {
					secrets.Err = &domain.Error{Kind: domain.KindSystem, Domain: domain.FromRPC,
						Detail: "Failed to connect socket to '/run/libvirt/virtsecretd-sock': No such file or directory"}
				}
				err := b.BuildVol(ctx, capvgPool(), v, 0)
				wantErr(t, err, tt.wantKind, tt.wantErr)
				if strings.Contains(err.Error(), "lv pass") || strings.Contains(err.Error(), "ceph key") {
					t.Errorf("a passphrase in the error %q", err)
				}
				// Nothing ran: no LV was made, so none is left.
				if len(f.RunLog()) != 0 {
					t.Errorf("ran %v", f.RunLog())
				}
			})
		}
	})

	t.Run("qemu-img failure removes the LV", func(t *testing.T) {
		v := encryptedLV(t, "lv3", lvSecret)
		v.Target.Path = "/dev/capvg/lv3"
		b, f, _ := luksLVBackend(t)
		f.Expect(logical.LVCreateArgv(vg, v)...)
		c := f.Expect("qemu-img", testkit.AnyRest)
		c.Exit, c.Stderr = 1, "qemu-img: /dev/capvg/lv3: Data from secret lv3_encrypt0 is not valid UTF-8"
		f.Expect(logical.LVRemoveArgv(v.Target.Path)...)
		err := b.BuildVol(ctx, capvgPool(), v, 0)
		wantErr(t, err, domain.KindInternal, "Data from secret lv3_encrypt0 is not valid UTF-8")
	})

	t.Run("the timing failure of qemu-img is run again", func(t *testing.T) {
		v := encryptedLV(t, "lv4", lvSecret)
		v.Target.Path = fakeDevice(t, 4096)
		b, f, _ := luksLVBackend(t)
		f.Expect(logical.LVCreateArgv(vg, v)...)
		c := f.Expect("qemu-img", testkit.AnyRest)
		c.Exit, c.Stderr = 1, "qemu-img: x: Unable to get accurate CPU usage"
		f.Expect("qemu-img", testkit.AnyRest)
		if err := b.BuildVol(ctx, capvgPool(), v, 0); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("only LUKS", func(t *testing.T) {
		v := encryptedLV(t, "lv5", lvSecret)
		v.Target.Encryption.Format = "qcow"
		err := logical.New(testkit.NewFakeRunner(t), nil).PrepareVol(capvgPool(), v)
		wantErr(t, err, domain.KindConfigUnsupported, "storage pool only supports LUKS encrypted volumes")
	})

	t.Run("a wipe destroys the header: the volume is no longer encrypted", func(t *testing.T) {
		// Found in the storage lab (internal/labe2e/lukslab): libvirt's
		// vol-dumpxml after the wipe of an encrypted LV has no <encryption>.
		v := encryptedLV(t, "lv1", lvSecret)
		v.Target.Path = fakeDevice(t, 4096)
		b, f, _ := luksLVBackend(t)
		f.Expect(logical.LVSArgv(vg)...).Stdout = "  lv1##dzt8WR-HlMe-Cfbu-oqKB-GumG-NsoO-QhthVP#/dev/loop0(0)#linear#1#12582912#4194304#12582912#-wi-a-----\n"
		if err := b.WipeVol(ctx, capvgPool(), v, domain.WipeZero, 0); err != nil {
			t.Fatal(err)
		}
		if v.Target.Encryption.Encrypted() {
			t.Errorf("after the wipe: encryption %+v", v.Target.Encryption)
		}
		if got, _ := os.ReadFile(v.Target.Path); strings.Trim(string(got), "\x00") != "" {
			t.Errorf("the device is not zeroed")
		}
	})

	t.Run("copy of an encrypted file re-encrypted with the LV's secret", func(t *testing.T) {
		v := encryptedLV(t, "copy", lvSecret)
		v.Target.Path = fakeDevice(t, 4096)
		src := &domain.VolDef{Name: "src.img", Type: domain.VolFile, Capacity: 4 << 20,
			Target: domain.VolTarget{Path: "/images/src.img", Format: "raw",
				Encryption: domain.VolEncryption{Format: "luks", Secrets: []domain.SecretRef{domain.SecretByUUID(srcSecret)}}}}
		b, f, _ := luksLVBackend(t)
		f.Expect(logical.LVCreateArgv(vg, v)...)
		f.Expect("qemu-img", "create", testkit.AnyRest).Do = keyChecked(t)
		f.Expect("qemu-img", "convert", testkit.AnyRest).Do = keyChecked(t)
		if err := b.BuildVolFrom(ctx, capvgPool(), v, nil, src, 0); err != nil {
			t.Fatal(err)
		}
		convert := f.RunLog()[2]
		want := []string{"qemu-img", "convert", "--image-opts", "-n", "--target-image-opts",
			"--object", "", "--object", "",
			"driver=luks,file.filename=/images/src.img,key-secret=src.img_encrypt0",
			"driver=luks,file.filename=" + v.Target.Path + ",key-secret=copy_encrypt0"}
		if len(convert) != len(want) {
			t.Fatalf("convert = %v", convert)
		}
		for i := range want {
			if want[i] != "" && convert[i] != want[i] {
				t.Errorf("convert[%d] = %q, want %q", i, convert[i], want[i])
			}
		}
		if !strings.HasPrefix(convert[6], "secret,id=copy_encrypt0,file=") || !strings.HasPrefix(convert[8], "secret,id=src.img_encrypt0,file=") {
			t.Errorf("objects %q %q", convert[6], convert[8])
		}
	})

	t.Run("copy of an encrypted LV decrypted into a plain one", func(t *testing.T) {
		v := vol("plain", 8<<20, 8<<20)
		v.Target.Perms = domain.UnsetPerms()
		v.Target.Path = fakeDevice(t, 4096)
		src := &domain.VolDef{Name: "enc", Type: domain.VolBlock, Target: domain.VolTarget{Path: "/dev/capvg/enc",
			Encryption: domain.VolEncryption{Format: "luks", Secrets: []domain.SecretRef{domain.SecretByUUID(srcSecret)}}}}
		b, f, _ := luksLVBackend(t)
		f.Expect(logical.LVCreateArgv(vg, v)...)
		f.Expect("qemu-img", "convert", "--image-opts", "-n", "--target-image-opts", "--object", testkit.AnyArg,
			"driver=luks,file.filename=/dev/capvg/enc,key-secret=enc_encrypt0",
			"driver=raw,file.filename="+v.Target.Path).Do = keyChecked(t)
		if err := b.BuildVolFrom(ctx, capvgPool(), v, nil, src, 0); err != nil {
			t.Fatal(err)
		}
	})
}
