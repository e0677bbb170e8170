package dir_test

import (
	"context"
	"errors"

	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/dir"
	"github.com/virtstoraged-go/virtstoraged/adapters/luks"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var (
	luksUUID   = domain.UUID{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55}
	inputUUID  = domain.UUID{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66}
	cephUUID   = domain.UUID{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77}
	missing    = domain.UUID{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44}
	passphrase = "pass word1"
	inputPass  = "input pass"
)

// keyWatch checks every secret qemu-img is given while it "runs": a 0600
// file in a 0700 directory of the keys directory, holding the passphrase. It
// remembers the paths, for the golden files and for checking they are gone.
type keyWatch struct {
	t       *testing.T
	keysDir string
	mu      sync.Mutex
	paths   map[string]string // alias -> key file
}

func (w *keyWatch) check(cmd ports.Command) error {
	for i, a := range cmd.Args {
		if a != "--object" || i+1 >= len(cmd.Args) {
			continue
		}
		obj := cmd.Args[i+1]
		id, file, ok := strings.Cut(strings.TrimPrefix(obj, "secret,id="), ",file=")
		if !ok {
			w.t.Errorf("object %q", obj)
			continue
		}
		if filepath.Dir(filepath.Dir(file)) != w.keysDir {
			w.t.Errorf("key file %s not in its own directory of %s", file, w.keysDir)
		}
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			w.t.Errorf("key file %s: %v %v", file, fi, err)
			continue
		}
		if di, err := os.Stat(filepath.Dir(file)); err != nil || di.Mode().Perm() != 0o700 {
			w.t.Errorf("key dir of %s: %v %v", file, di, err)
		}
		b, _ := os.ReadFile(file)
		if want := map[bool]string{true: inputPass, false: passphrase}[strings.HasPrefix(id, "src")]; string(b) != want {
			w.t.Errorf("key file for %s holds %q, want %q", id, b, want)
		}
		w.mu.Lock()
		w.paths[id] = file
		w.mu.Unlock()
	}
	return nil
}

// replacements show the key files as libvirt's golden files do.
func (w *keyWatch) replacements(volName string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var r []string
	for id, p := range w.paths {
		if id == luks.Alias(volName) {
			r = append(r, p, "/path/to/secretFile")
		} else {
			r = append(r, p, "/path/to/inputSecretFile")
		}
	}
	return r
}

// luksBackend is a dir backend with a scripted runner and an in-memory
// secret driver holding a volume passphrase (luksUUID, usage its path), the
// passphrase of a source volume (inputUUID) and a Ceph key.
func luksBackend(t *testing.T) (*dir.Backend, *testkit.FakeRunner, *testkit.FakeSecrets, *keyWatch) {
	b, f := fakeBackend(t)
	secrets := &testkit.FakeSecrets{}
	secrets.Add(luksUUID, domain.SecretUsageVolume, "/var/lib/libvirt/images/LuksDemo.img", []byte(passphrase))
	secrets.Add(inputUUID, domain.SecretUsageVolume, "/elsewhere", []byte(inputPass))
	secrets.Add(cephUUID, domain.SecretUsageCeph, "client.admin", []byte("cephkey"))
	keysDir := t.TempDir()
	b.Keys = &luks.Keys{Store: secrets, Dir: keysDir}
	w := &keyWatch{t: t, keysDir: keysDir, paths: map[string]string{}}
	t.Cleanup(func() {
		if ents, _ := os.ReadDir(keysDir); len(ents) != 0 {
			t.Errorf("key files left behind: %v", ents)
		}
		if zeroed, _ := secrets.AllZeroed(); !zeroed {
			t.Error("a passphrase buffer was not zeroed after use")
		}
		for _, argv := range f.RunLog() {
			for _, a := range argv {
				if strings.Contains(a, passphrase) || strings.Contains(a, inputPass) {
					t.Errorf("passphrase in argv %v", argv)
				}
			}
		}
	})
	return b, f, secrets, w
}

func luksEnc(u domain.UUID) domain.VolEncryption {
	return domain.VolEncryption{Format: "luks", Secrets: []domain.SecretRef{domain.SecretByUUID(u)}}
}

// runsAs is a scripted qemu-img that checks its key files and creates the
// image at its last path argument.
func runsAs(w *keyWatch, create bool) func(ports.Command) error {
	return func(cmd ports.Command) error {
		w.check(cmd)
		if create {
			return touchLastArg(cmd)
		}
		return nil
	}
}

func TestEncryptedCreateArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		giveVol string
		giveFmt string
		giveMod func(v *domain.VolDef, poolDir string)
	}{
		{name: "luks", giveVol: "LuksDemo.img", giveFmt: "raw"},
		{name: "luks-cipher", giveVol: "LuksDemo.img", giveFmt: "raw", giveMod: func(v *domain.VolDef, _ string) {
			v.Target.Encryption.Cipher = domain.EncryptionCipher{Name: "serpent", Size: 256, Mode: "cbc", Hash: "sha256"}
			v.Target.Encryption.Ivgen = domain.EncryptionIvgen{Name: "plain64", Hash: "sha256"}
		}},
		{name: "luks-by-usage", giveVol: "LuksDemo.img", giveFmt: "raw", giveMod: func(v *domain.VolDef, _ string) {
			v.Target.Encryption.Secrets = []domain.SecretRef{domain.SecretByUsage("/var/lib/libvirt/images/LuksDemo.img")}
		}},
		{name: "qcow2-luks", giveVol: "OtherDemoLuks.img", giveFmt: "qcow2", giveMod: func(v *domain.VolDef, d string) {
			v.Backing = &domain.BackingStore{Path: filepath.Join(d, "base.img")}
		}},
		{name: "qcow2-luks-1.1-lazy", giveVol: "OtherDemoLuks.img", giveFmt: "qcow2", giveMod: func(v *domain.VolDef, _ string) {
			v.Target.Compat = "1.1"
			v.Target.LazyRefcounts = true
			v.Target.ClusterSize = 131072
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f, _, w := luksBackend(t)
			pool := newPool(t)
			if err := os.WriteFile(filepath.Join(pool.Target.Path, "base.img"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			vol := newVol(t, b, pool, tt.giveVol, tt.giveFmt, gib5, func(v *domain.VolDef) {
				v.Target.Encryption = luksEnc(luksUUID)
				if tt.giveMod != nil {
					tt.giveMod(v, pool.Target.Path)
				}
			})
			f.Expect("qemu-img", testkit.AnyRest).Do = runsAs(w, true)
			if err := b.BuildVol(context.Background(), pool, vol, 0); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, pool.Target.Path, replaceIn(f.RunLog(), w.replacements(tt.giveVol)))
		})
	}
}

// replaceIn rewrites the key file paths in argvs (checkGolden rewrites the
// pool directory).
func replaceIn(argvs [][]string, repl []string) [][]string {
	r := strings.NewReplacer(repl...)
	out := make([][]string, len(argvs))
	for i, argv := range argvs {
		for _, a := range argv {
			out[i] = append(out[i], r.Replace(a))
		}
	}
	return out
}

// TestEncryptedConvertArgv: copies to, from and between encrypted images,
// as libvirt's storagevolxml2argv luks-convert*.argv files show them.
func TestEncryptedConvertArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		giveSrc    string // source format
		giveSrcEnc bool
		giveDst    string
		giveDstEnc bool
		giveCap    uint64 // asked capacity; the source has 1 MiB
	}{
		{name: "luks-convert", giveSrc: "raw", giveDst: "raw", giveDstEnc: true, giveCap: 1 << 20},
		{name: "luks-convert-qcow2", giveSrc: "qcow2", giveDst: "raw", giveDstEnc: true, giveCap: 1 << 20},
		{name: "luks-convert-encrypt", giveSrc: "raw", giveSrcEnc: true, giveDst: "raw", giveDstEnc: true, giveCap: 1 << 20},
		{name: "luks-convert-encrypt2fileraw", giveSrc: "raw", giveSrcEnc: true, giveDst: "raw", giveCap: 1 << 20},
		{name: "luks-convert-encrypt2fileqcow2", giveSrc: "raw", giveSrcEnc: true, giveDst: "qcow2", giveCap: 1 << 20},
		{name: "qcow2-luks-convert-encrypt", giveSrc: "qcow2", giveSrcEnc: true, giveDst: "qcow2", giveDstEnc: true, giveCap: 1 << 20},
		{name: "luks-convert-grow", giveSrc: "raw", giveSrcEnc: true, giveDst: "raw", giveDstEnc: true, giveCap: 8 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f, _, w := luksBackend(t)
			pool := newPool(t)
			src := &domain.VolDef{Name: "src.img", Type: domain.VolFile, Capacity: 1 << 20, HasCapacity: true,
				Target: domain.VolTarget{Path: filepath.Join(pool.Target.Path, "src.img"), Format: tt.giveSrc}}
			if tt.giveSrcEnc {
				src.Target.Encryption = luksEnc(inputUUID)
			}
			vol := newVol(t, b, pool, "OtherDemo.img", tt.giveDst, tt.giveCap, func(v *domain.VolDef) {
				if tt.giveDstEnc {
					v.Target.Encryption = luksEnc(luksUUID)
				}
			})
			f.Expect("qemu-img", "create", testkit.AnyRest).Do = runsAs(w, true)
			f.Expect("qemu-img", "convert", testkit.AnyRest).Do = runsAs(w, false)
			if err := b.BuildVolFrom(context.Background(), pool, vol, pool, src, 0); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, pool.Target.Path, replaceIn(f.RunLog(), w.replacements("OtherDemo.img")))
		})
	}
}

func TestEncryptedResizeArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveFmt  string
		giveCap  uint64
		giveFlag uint32
		giveRef  domain.SecretRef // zero: no secret named, found by usage
	}{
		{name: "resize-luks-grow", giveFmt: "raw", giveCap: 20<<20 + 1, giveRef: domain.SecretByUUID(luksUUID)},
		{name: "resize-luks-shrink", giveFmt: "raw", giveCap: 5 << 20, giveFlag: domain.VolResizeShrink, giveRef: domain.SecretByUUID(luksUUID)},
		{name: "resize-luks-by-path", giveFmt: "raw", giveCap: 20 << 20},
		{name: "resize-qcow2-luks", giveFmt: "qcow2", giveCap: 20 << 20, giveRef: domain.SecretByUUID(luksUUID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f, secrets, w := luksBackend(t)
			pool := newPool(t)
			path := filepath.Join(pool.Target.Path, "LuksDemo.img")
			if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			vol := &domain.VolDef{Name: "LuksDemo.img", Type: domain.VolFile, Capacity: 10 << 20, HasCapacity: true,
				Target: domain.VolTarget{Path: path, Format: tt.giveFmt, Encryption: domain.VolEncryption{Format: "luks"}}}
			if tt.giveRef == (domain.SecretRef{}) {
				secrets.Add(missing, domain.SecretUsageVolume, path, []byte(passphrase))
			} else {
				vol.Target.Encryption.Secrets = []domain.SecretRef{tt.giveRef}
			}
			f.Expect("qemu-img", testkit.AnyRest).Do = runsAs(w, false)
			if err := b.ResizeVol(context.Background(), pool, vol, tt.giveCap, tt.giveFlag); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, pool.Target.Path, replaceIn(f.RunLog(), w.replacements("LuksDemo.img")))
		})
	}
}

// TestEncryptedRefusals: bad input fails with libvirt's error (measured
// against libvirtd 9.0), runs nothing, and leaves no volume and no key file.
func TestEncryptedRefusals(t *testing.T) {
	t.Parallel()
	down := &domain.Error{Kind: domain.KindSystem, Domain: domain.FromRPC, Detail: "Failed to connect socket to '/run/libvirt/libvirt-sock': No such file or directory"}
	tests := []struct {
		name      string
		giveFmt   string
		giveEnc   domain.VolEncryption
		giveFlags uint32
		giveDown  bool
		wantKind  domain.Kind
		wantErr   string
	}{
		{name: "no secret", giveFmt: "raw", giveEnc: domain.VolEncryption{Format: "luks"}, wantKind: domain.KindInvalidArg,
			wantErr: "invalid argument: A single <secret type='passphrase'...> element is expected in encryption description"},
		{name: "two secrets", giveFmt: "raw", giveEnc: domain.VolEncryption{Format: "luks", Secrets: []domain.SecretRef{domain.SecretByUUID(luksUUID), domain.SecretByUUID(luksUUID)}},
			wantKind: domain.KindInvalidArg, wantErr: "invalid argument: A single <secret type='passphrase'...> element is expected in encryption description"},
		{name: "unknown uuid", giveFmt: "raw", giveEnc: luksEnc(missing), wantKind: domain.KindNoSecret,
			wantErr: "Secret not found: no secret with matching uuid '11111111-2222-3333-4444-000000000000'"},
		{name: "unknown usage", giveFmt: "raw", giveEnc: domain.VolEncryption{Format: "luks", Secrets: []domain.SecretRef{domain.SecretByUsage("/nosuch")}},
			wantKind: domain.KindNoSecret, wantErr: "Secret not found: no secret with matching usage '/nosuch'"},
		{name: "wrong type", giveFmt: "raw", giveEnc: luksEnc(cephUUID), wantKind: domain.KindInvalidArg,
			wantErr: "invalid argument: secret with uuid 11111111-2222-3333-4444-777777777777 is of type 'ceph' not expected 'volume' type"},
		{name: "driver down", giveFmt: "raw", giveEnc: luksEnc(luksUUID), giveDown: true, wantKind: domain.KindSystem, wantErr: down.Error()},
		{name: "prealloc raw", giveFmt: "raw", giveEnc: luksEnc(luksUUID), giveFlags: domain.VolCreatePreallocMetadata,
			wantKind: domain.KindConfigUnsupported, wantErr: "unsupported configuration: metadata preallocation only available with qcow2"},
		{name: "qcow on qcow2", giveFmt: "qcow2", giveEnc: domain.VolEncryption{Format: "qcow", Secrets: []domain.SecretRef{domain.SecretByUUID(luksUUID)}},
			wantKind: domain.KindConfigUnsupported, wantErr: "unsupported configuration: creation of qcow2 encrypted image is not supported"},
		{name: "qcow on raw", giveFmt: "raw", giveEnc: domain.VolEncryption{Format: "qcow", Secrets: []domain.SecretRef{domain.SecretByUUID(luksUUID)}},
			wantKind: domain.KindInternal, wantErr: "internal error: Only luks encryption is supported for raw files"},
		{name: "luks on vmdk", giveFmt: "vmdk", giveEnc: luksEnc(luksUUID),
			wantKind: domain.KindConfigUnsupported, wantErr: "unsupported configuration: volume encryption unsupported with format vmdk"},
		{name: "reflink", giveFmt: "raw", giveEnc: luksEnc(luksUUID), giveFlags: domain.VolCreateReflink,
			wantKind: domain.KindInvalidArg, wantErr: "unsupported flags (0x2) in function storageBackendCreateQemuImg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f, secrets, _ := luksBackend(t)
			if tt.giveDown {
				secrets.Err = down
			}
			pool := newPool(t)
			vol := newVol(t, b, pool, "LuksDemo.img", tt.giveFmt, 1<<20, func(v *domain.VolDef) { v.Target.Encryption = tt.giveEnc })
			err := b.BuildVol(context.Background(), pool, vol, tt.giveFlags)
			wantErrText(t, err, tt.wantKind, tt.wantErr)
			if len(f.RunLog()) != 0 {
				t.Errorf("ran %v", f.RunLog())
			}
			if _, err := os.Stat(vol.Target.Path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("volume left behind: %v", err)
			}
		})
	}
}

// TestEncryptedToolFailures: qemu-img failing leaves no volume, its error is
// libvirt's, and the timing failure of qemu-img's key derivation is retried.
func TestEncryptedToolFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("not utf-8", func(t *testing.T) {
		t.Parallel()
		b, f, _, w := luksBackend(t)
		pool := newPool(t)
		vol := newVol(t, b, pool, "LuksDemo.img", "raw", 1<<20, func(v *domain.VolDef) { v.Target.Encryption = luksEnc(luksUUID) })
		c := f.Expect("qemu-img", testkit.AnyRest)
		c.Do, c.Exit, c.Stderr = runsAs(w, false), 1, "qemu-img: "+vol.Target.Path+": Data from secret LuksDemo.img_encrypt0 is not valid UTF-8\n"
		err := b.BuildVol(ctx, pool, vol, 0)
		// qemu-img is named by its path and its stderr kept whole, as libvirt's
		// error has them.
		if err == nil || !strings.HasPrefix(err.Error(), "internal error: Child process (") ||
			!strings.Contains(err.Error(), "qemu-img create -f luks --object secret,id=LuksDemo.img_encrypt0,file=") ||
			!strings.HasSuffix(err.Error(), "unexpected exit status 1: qemu-img: "+vol.Target.Path+": Data from secret LuksDemo.img_encrypt0 is not valid UTF-8\n") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("timing retried", func(t *testing.T) {
		t.Parallel()
		b, f, _, w := luksBackend(t)
		pool := newPool(t)
		vol := newVol(t, b, pool, "LuksDemo.img", "raw", 1<<20, func(v *domain.VolDef) { v.Target.Encryption = luksEnc(luksUUID) })
		for range 2 {
			c := f.Expect("qemu-img", testkit.AnyRest)
			c.Do, c.Exit, c.Stderr = runsAs(w, false), 1, "qemu-img: "+vol.Target.Path+": Unable to get accurate CPU usage\n"
		}
		f.Expect("qemu-img", testkit.AnyRest).Do = runsAs(w, true)
		if err := b.BuildVol(ctx, pool, vol, 0); err != nil {
			t.Fatal(err)
		}
		if n := len(f.RunLog()); n != 3 {
			t.Errorf("%d runs", n)
		}
	})
	t.Run("convert fails", func(t *testing.T) {
		t.Parallel()
		b, f, _, w := luksBackend(t)
		pool := newPool(t)
		src := &domain.VolDef{Name: "src.img", Type: domain.VolFile, Capacity: 1 << 20, HasCapacity: true,
			Target: domain.VolTarget{Path: filepath.Join(pool.Target.Path, "src.img"), Format: "raw", Encryption: luksEnc(inputUUID)}}
		vol := newVol(t, b, pool, "OtherDemo.img", "raw", 1<<20, func(v *domain.VolDef) { v.Target.Encryption = luksEnc(luksUUID) })
		f.Expect("qemu-img", "create", testkit.AnyRest).Do = runsAs(w, true)
		c := f.Expect("qemu-img", "convert", testkit.AnyRest)
		c.Do, c.Exit, c.Stderr = runsAs(w, false), 1, "qemu-img: Invalid password, cannot unlock any keyslot\n"
		err := b.BuildVolFrom(ctx, pool, vol, pool, src, 0)
		if err == nil || !strings.HasSuffix(err.Error(), "unexpected exit status 1: qemu-img: Invalid password, cannot unlock any keyslot\n") {
			t.Errorf("err = %v", err)
		}
		if _, err := os.Stat(vol.Target.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("half-made volume left: %v", err)
		}
	})
	t.Run("resize allocate", func(t *testing.T) {
		t.Parallel()
		b, _, _, _ := luksBackend(t)
		pool := newPool(t)
		vol := &domain.VolDef{Name: "v", Type: domain.VolFile, Capacity: 1 << 20, Target: domain.VolTarget{Path: "/x", Format: "raw", Encryption: luksEnc(luksUUID)}}
		err := b.ResizeVol(ctx, pool, vol, 2<<20, domain.VolResizeAllocate)
		wantErrText(t, err, domain.KindOperationUnsupported, "Operation not supported: preallocate is only supported for an unencrypted raw volume")
	})
	t.Run("resize without secret", func(t *testing.T) {
		t.Parallel()
		b, _, _, _ := luksBackend(t)
		pool := newPool(t)
		vol := &domain.VolDef{Name: "v", Type: domain.VolFile, Capacity: 1 << 20, Target: domain.VolTarget{Path: "/nosecret", Format: "raw", Encryption: domain.VolEncryption{Format: "luks"}}}
		err := b.ResizeVol(ctx, pool, vol, 2<<20, 0)
		wantErrText(t, err, domain.KindXMLError, "XML error: no secret provided for luks encryption")
	})
}

// TestEncryptedRefreshKeepsSecret: a re-read keeps the secret the volume was
// made with, finds one by the volume's path when none is named (libvirt's
// storageBackendLoadDefaultSecrets), and drops the encryption once the file is
// no longer LUKS.
func TestEncryptedRefreshKeepsSecret(t *testing.T) {
	t.Parallel()
	b, _, secrets, _ := luksBackend(t)
	pool := newPool(t)
	path := filepath.Join(pool.Target.Path, "v.img")
	header := make([]byte, 4096+1<<20)
	copy(header, "LUKS\xba\xbe\x00\x01")
	header[104], header[105], header[106], header[107] = 0, 0, 0, 8 // payload at sector 8
	if err := os.WriteFile(path, header, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vol := &domain.VolDef{Name: "v.img", Target: domain.VolTarget{Path: path, Format: "raw", Encryption: luksEnc(luksUUID)}}
	if err := b.RefreshVol(ctx, pool, vol); err != nil {
		t.Fatal(err)
	}
	if e := vol.Target.Encryption; e.Format != "luks" || len(e.Secrets) != 1 || e.Secrets[0].UUID != luksUUID || vol.Capacity != 1<<20 {
		t.Errorf("after refresh: %+v, capacity %d", e, vol.Capacity)
	}
	fresh := &domain.VolDef{Name: "v.img", Target: domain.VolTarget{Path: path}}
	if err := b.RefreshVol(ctx, pool, fresh); err != nil {
		t.Fatal(err)
	}
	if e := fresh.Target.Encryption; e.Format != "luks" || len(e.Secrets) != 0 {
		t.Errorf("no secret has the volume's path as usage, yet: %+v", e)
	}
	secrets.Add(domain.UUID{9}, domain.SecretUsageVolume, path, []byte("x"))
	if err := b.RefreshVol(ctx, pool, fresh); err != nil {
		t.Fatal(err)
	}
	if e := fresh.Target.Encryption; len(e.Secrets) != 1 || e.Secrets[0].UUID != (domain.UUID{9}) {
		t.Errorf("secret by the volume's path not found: %+v", e)
	}
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.RefreshVol(ctx, pool, vol); err != nil {
		t.Fatal(err)
	}
	if vol.Target.Encryption.Encrypted() {
		t.Errorf("zeroed file still encrypted: %+v", vol.Target.Encryption)
	}
}

// TestEncryptedAsOwner: on a netfs pool qemu-img runs as the volume's owner,
// who then must be able to read the key file; it is theirs, in a directory
// of theirs, as libvirt chowns its file.
func TestEncryptedAsOwner(t *testing.T) {
	testkit.RequireRoot(t)
	t.Parallel()
	b, f, _, w := luksBackend(t)
	cred := &ports.Credential{UID: testOwner, GID: testOwner}
	b.Owner = &fsOwner{cred: cred}
	pool := &domain.PoolDef{Type: domain.PoolNetFS, Name: "p", Target: domain.PoolTarget{Path: testkit.OwnedDir(t, testOwner), Perms: domain.UnsetPerms()}}
	vol := newVol(t, b, pool, "LuksDemo.img", "raw", 1<<20, func(v *domain.VolDef) {
		v.Target.Perms = ownerPerms(0o600)
		v.Target.Encryption = luksEnc(luksUUID)
	})
	f.Expect("qemu-img", testkit.AnyRest).As(cred, 0o177).Do = func(cmd ports.Command) error {
		w.check(cmd)
		for _, p := range w.paths {
			for _, q := range []string{p, filepath.Dir(p)} {
				fi, err := os.Stat(q)
				if err != nil {
					t.Fatal(err)
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != testOwner || st.Gid != testOwner {
					t.Errorf("%s owned by %d:%d, want the volume's owner", q, st.Uid, st.Gid)
				}
			}
		}
		return asOwner(func() error { return touchLastArg(cmd) })
	}
	if err := b.BuildVol(context.Background(), pool, vol, 0); err != nil {
		t.Fatal(err)
	}
	wantOwnedFile(t, vol.Target.Path, 0o600)
}
