// Package luks makes and opens LUKS-encrypted volumes with qemu-img as
// libvirt 9.0 does (storage_util.c): the checks libvirt applies to an
// <encryption>, the pieces of its qemu-img command lines (--object secret,
// the -o encryption options, --image-opts), and the secret handed to qemu-img
// in a 0600 file inside a private 0700 directory that is removed as soon as
// the command is done. The file-based pools (adapters/dir) and the logical
// pools share it.
//
// The passphrase is read from the secret driver (ports.SecretStore) for one
// command at a time; the buffer holding it is zeroed once the file is
// written, and neither the value nor the file's content appears in an argv,
// a log line or an error.
package luks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/oserr"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Format is the qemu-img format of a raw LUKS image.
const Format = "luks"

// Alias is the id libvirt gives a volume's secret object on qemu-img's
// command line: "<volume name>_encrypt0".
func Alias(volName string) string { return volName + "_encrypt0" }

// escapeComma doubles commas, as qemu's option parser wants them in a value
// (libvirt's virQEMUBuildBufferEscapeComma).
func escapeComma(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// SecretObject is the value of qemu-img's --object for a secret read from a
// file: "secret,id=ALIAS,file=PATH" (format=raw is qemu's default).
func SecretObject(alias, path string) string {
	return "secret,id=" + alias + ",file=" + escapeComma(path)
}

// prefix is what the encryption options are prefixed with: qcow2 carries
// its LUKS header inside, under "encrypt."; a raw LUKS image has none.
func prefix(format string) string {
	if format == "qcow2" {
		return "encrypt."
	}
	return ""
}

// CreateOptions is the encryption part of qemu-img create's -o list, in
// libvirt's order: for qcow2 "encrypt.format=luks," first, then the key
// secret and, when the XML gave one, the cipher and ivgen.
func CreateOptions(format, alias string, enc domain.VolEncryption) []string {
	p := prefix(format)
	var opts []string
	if format == "qcow2" {
		opts = append(opts, "encrypt.format=luks")
	}
	opts = append(opts, p+"key-secret="+alias)
	c := enc.Cipher
	if c.Name == "" {
		return opts
	}
	opts = append(opts, p+"cipher-alg="+escapeComma(c.Name)+"-"+strconv.FormatUint(uint64(c.Size), 10))
	if c.Mode != "" {
		opts = append(opts, p+"cipher-mode="+escapeComma(c.Mode))
	}
	if c.Hash != "" {
		opts = append(opts, p+"hash-alg="+escapeComma(c.Hash))
	}
	if enc.Ivgen.Name == "" {
		return opts
	}
	opts = append(opts, p+"ivgen-alg="+escapeComma(enc.Ivgen.Name))
	if enc.Ivgen.Hash != "" {
		opts = append(opts, p+"ivgen-hash-alg="+escapeComma(enc.Ivgen.Hash))
	}
	return opts
}

// ConvertImage is one side of a `qemu-img convert --image-opts
// --target-image-opts`: driver and file as libvirt writes them, with the key
// secret when the image is encrypted (alias not empty).
func ConvertImage(driver, format, path, alias string) string {
	s := "driver=" + driver + ",file.filename=" + path
	if alias != "" {
		s += "," + prefix(format) + "key-secret=" + alias
	}
	return s
}

// ConvertSide is one image of a copy from or to an encrypted image: its
// block driver (Driver), format and path, and the key file of its secret (nil
// for a plain image), whose object is named after the volume (Alias).
type ConvertSide struct {
	Volume, Driver, Format, Path string
	Key                          *KeyFile
}

// alias is the side's secret object id, "" for a plain image.
func (c ConvertSide) alias() string {
	if c.Key == nil {
		return ""
	}
	return Alias(c.Volume)
}

// ConvertArgs are the qemu-img arguments of the second step of libvirt's
// copy from or to an encrypted image, into the image the first step made:
// convert --image-opts -n --target-image-opts [--object OBJ]... SRC DST, the
// destination's secret object before the source's, as libvirt writes them.
func ConvertArgs(src, dst ConvertSide) []string {
	args := []string{"convert", "--image-opts", "-n", "--target-image-opts"}
	for _, side := range []ConvertSide{dst, src} {
		if side.Key != nil {
			args = append(args, "--object", SecretObject(side.alias(), side.Key.Path))
		}
	}
	return append(args,
		ConvertImage(src.Driver, src.Format, src.Path, src.alias()),
		ConvertImage(dst.Driver, dst.Format, dst.Path, dst.alias()))
}

// ResizeImage is the --image-opts of an encrypted image for qemu-img resize,
// in the other order libvirt uses there, with the path's commas escaped.
func ResizeImage(format, path, alias string) string {
	driver := Format
	if format == "qcow2" {
		driver = "qcow2"
	}
	return "driver=" + driver + "," + prefix(format) + "key-secret=" + alias + ",file.filename=" + escapeComma(path)
}

// Driver is the qemu block driver of an image of this format: raw with
// encryption is LUKS.
func Driver(format string, enc domain.VolEncryption) string {
	if format == "raw" && enc.Encrypted() {
		return Format
	}
	return format
}

// CheckCreate applies libvirt's rules to an encrypted volume about to be made
// with qemu-img (virStorageBackendCreateQemuImgCmdFromVol), in libvirt's
// order: CheckQcow, CheckRaw, then CheckEncryption when the volume is
// encrypted. format is the volume's format; input is the source's encryption
// for a copy (zero otherwise), inputFormat its format. Callers with other
// checks of their own between those steps (preallocation, backing store) call
// the three in turn.
func CheckCreate(format string, enc domain.VolEncryption, inputFormat string, input domain.VolEncryption) error {
	if err := CheckQcow(format, enc, input); err != nil {
		return err
	}
	if err := CheckRaw(format, enc, inputFormat, input); err != nil {
		return err
	}
	if !enc.Encrypted() {
		return nil
	}
	return CheckEncryption(format, enc)
}

// CheckQcow refuses what libvirt refuses first: a qcow2 with qcow's own
// (AES) encryption, and a source encrypted with anything but LUKS.
func CheckQcow(format string, enc domain.VolEncryption, input domain.VolEncryption) error {
	if enc.Encrypted() && (enc.Format == "qcow" || enc.Format == "default") && (format == "qcow" || format == "qcow2") {
		return domain.Errorf(domain.KindConfigUnsupported, "creation of qcow2 encrypted image is not supported")
	}
	if input.Encrypted() && input.Format != "luks" {
		return domain.Errorf(domain.KindConfigUnsupported, "encryption format of inputvol must be LUKS")
	}
	return nil
}

// CheckRaw refuses an encrypted raw image, new or source, that is not LUKS.
func CheckRaw(format string, enc domain.VolEncryption, inputFormat string, input domain.VolEncryption) error {
	if (format == "raw" && enc.Encrypted() && enc.Format != "luks") ||
		(inputFormat == "raw" && input.Encrypted() && input.Format != "luks") {
		return domain.Errorf(domain.KindInternal, "Only luks encryption is supported for raw files")
	}
	return nil
}

// CheckEncryption is storageBackendCreateQemuImgCheckEncryption: only raw
// (as LUKS) and qcow2 carry encryption, it must be LUKS, with one secret.
func CheckEncryption(format string, enc domain.VolEncryption) error {
	if format != "raw" && format != "qcow2" {
		return domain.Errorf(domain.KindConfigUnsupported, "volume encryption unsupported with format %s", Driver(format, enc))
	}
	if enc.Format != "luks" {
		return domain.Errorf(domain.KindConfigUnsupported, "unsupported volume encryption format %d", formatNumber(enc.Format))
	}
	switch n := len(enc.Secrets); {
	case n > 1:
		return domain.Errorf(domain.KindXMLError, "too many secrets for luks encryption")
	case n == 0:
		return domain.Errorf(domain.KindXMLError, "no secret provided for luks encryption")
	}
	return nil
}

// formatNumber is virStorageEncryptionFormatType's value, which libvirt
// prints in one of its messages.
func formatNumber(f string) int {
	for i, n := range []string{"default", "qcow", "luks", "luks2"} {
		if n == f {
			return i
		}
	}
	return -1
}

// timingFailure is qemu-img's complaint when its first PBKDF timing measured
// no CPU time at all (a coarse thread clock, as under some hypervisors): it
// fails before writing anything, and the same command usually succeeds.
const timingFailure = "Unable to get accurate CPU usage"

// maxAttempts bounds the retries of a command that failed its PBKDF timing.
// On the machines where it happens at all it does so on a fraction of the
// runs, each failure costing a few milliseconds.
const maxAttempts = 10

// Retry runs a qemu-img command that creates or converts a LUKS image, again
// as long as it fails only because qemu-img could not time its key
// derivation. libvirt runs it once and reports that failure; retrying the
// identical command is safe, since qemu-img fails before it writes.
func Retry(ctx context.Context, log *logrus.Entry, run func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = run()
		if err == nil || attempt == maxAttempts || ctx.Err() != nil || !timingFailed(err) {
			return err
		}
		if log != nil {
			log.WithField("attempt", attempt).Debug("luks: qemu-img could not time its key derivation, running it again")
		}
	}
}

func timingFailed(err error) bool {
	var xe *ports.ExitError
	return errors.As(err, &xe) && strings.Contains(xe.Stderr, timingFailure)
}

// Keys stages volume passphrases for qemu-img.
type Keys struct {
	// Store reads the secrets; nil refuses every encrypted volume.
	Store ports.SecretStore
	// Dir holds the private directories of the key files: the daemon's
	// runtime storage directory (/run/libvirt/storage), on tmpfs like
	// libvirt's, so that a passphrase never reaches a disk.
	Dir string
}

// KeyFile is a passphrase written for one qemu-img command.
type KeyFile struct {
	// Path is the 0600 file holding the passphrase.
	Path string
	dir  string
}

// Remove deletes the file and its directory. Safe on a nil KeyFile.
func (k *KeyFile) Remove() {
	if k == nil {
		return
	}
	_ = os.RemoveAll(k.dir)
}

// Stage reads the passphrase of enc's secret and writes it for qemu-img, as
// libvirt's storageBackendCreateQemuImgSecretPath: exactly one secret, of
// usage type volume. pool and vol name the directory, as libvirt names its
// file ("POOL.VOL.secret.XXXXXX"). With owner set (qemu-img running as the
// volume's owner on a netfs pool), the directory and file are given to the
// owner, as libvirt chowns its file.
func (k *Keys) Stage(ctx context.Context, pool, vol string, enc domain.VolEncryption, owner *ports.Credential) (*KeyFile, error) {
	if len(enc.Secrets) != 1 {
		return nil, domain.Errorf(domain.KindInvalidArg, "A single <secret type='passphrase'...> element is expected in encryption description")
	}
	if k == nil || k.Store == nil {
		return nil, domain.Errorf(domain.KindOperationUnsupported, "no secret driver to read the passphrase of volume '%s' from", vol)
	}
	value, err := k.Store.SecretValue(ctx, enc.Secrets[0], domain.SecretUsageVolume)
	if err != nil {
		return nil, err
	}
	defer clear(value)
	if err := os.MkdirAll(k.Dir, 0o755); err != nil {
		return nil, oserr.System(err, "failed to open secret file for write")
	}
	dir, err := os.MkdirTemp(k.Dir, pool+"."+vol+".secret.")
	if err != nil {
		return nil, oserr.System(err, "failed to open secret file for write")
	}
	kf := &KeyFile{Path: filepath.Join(dir, "key"), dir: dir}
	if err := writeKey(kf.Path, value); err != nil {
		kf.Remove()
		return nil, err
	}
	if owner != nil {
		for _, p := range []string{dir, kf.Path} {
			if err := os.Chown(p, int(owner.UID), int(owner.GID)); err != nil {
				kf.Remove()
				return nil, domain.Errorf(domain.KindInternal, "failed to chown secret file")
			}
		}
	}
	return kf, nil
}

func writeKey(path string, value []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return oserr.System(err, "failed to open secret file for write")
	}
	_, err = f.Write(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return oserr.System(err, "failed to write secret file")
	}
	return nil
}

// LoadDefault fills in the secret of an encrypted volume that names none (as
// a refresh finds it) when the secret driver holds a volume secret whose
// usage is the volume's path, as libvirt's storageBackendLoadDefaultSecrets.
// It changes nothing when there is no such secret. Unlike libvirt, a secret
// driver that cannot be reached is logged and ignored, so that vol-info and
// vol-dumpxml of encrypted volumes keep working without it.
func (k *Keys) LoadDefault(ctx context.Context, log *logrus.Entry, vol *domain.VolDef) {
	enc := vol.Target.Encryption
	if !enc.Encrypted() || len(enc.Secrets) != 0 || k == nil || k.Store == nil {
		return
	}
	s, err := k.Store.LookupSecret(ctx, domain.SecretByUsage(vol.Target.Path), domain.SecretUsageVolume)
	if err != nil {
		if domain.KindOf(err) != domain.KindNoSecret && log != nil {
			log.WithField("vol", vol.Name).WithError(err).Debug("luks: cannot look the volume's secret up")
		}
		return
	}
	// A new slice: the definition may share its backing array with a cached copy.
	enc.Secrets = []domain.SecretRef{domain.SecretByUUID(s.UUID)}
	vol.Target.Encryption = enc
}

// Sweep removes the key directories a daemon killed in the middle of a
// command left in dir, so that no passphrase outlives the daemon that
// staged it.
func Sweep(dir string, log *logrus.Entry) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.Contains(e.Name(), ".secret.") {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil && log != nil {
			log.WithError(err).WithField("dir", e.Name()).Warn("luks: cannot remove a key directory left behind")
		}
	}
}
