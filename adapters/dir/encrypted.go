package dir

import (
	"context"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/imgformat"
	"github.com/virtstoraged-go/virtstoraged/adapters/luks"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Encrypted volumes, as libvirt 9.0 makes them: a raw volume with LUKS
// encryption is a `qemu-img create -f luks` image, a qcow2 one carries LUKS
// inside (encrypt.format=luks). The passphrase comes from the secret driver
// for the one qemu-img command that needs it (luks.Keys).

// ownerCred is who qemu-img runs as for vol: its owner on a netfs pool, the
// daemon (nil) elsewhere. The key file is given to that owner.
func (v *FileVolumes) ownerCred(vol *domain.VolDef) *ports.Credential {
	if v.Owner == nil {
		return nil
	}
	return v.Owner.Credential(vol.Target.Perms)
}

// stage writes vol's passphrase for qemu-img (a nil file for a volume that
// is not encrypted).
func (v *FileVolumes) stage(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) (*luks.KeyFile, error) {
	if !vol.Target.Encryption.Encrypted() {
		return nil, nil
	}
	return v.Keys.Stage(ctx, pool.Name, vol.Name, vol.Target.Encryption, v.ownerCred(vol))
}

// checkImageOptions are libvirt's checks of the options only qcow2 takes
// (virStorageBackendCreateQemuImgSetInfo), for the encrypted paths whose
// order of checks follows libvirt's step by step.
func checkImageOptions(vol *domain.VolDef, prealloc bool) error {
	t := &vol.Target
	switch {
	case prealloc && t.Format != "qcow2":
		return domain.Errorf(domain.KindConfigUnsupported, "metadata preallocation only available with qcow2")
	case t.Compat != "" && t.Format != "qcow2":
		return domain.Errorf(domain.KindConfigUnsupported, "compatibility option only available with qcow2")
	case (t.LazyRefcounts || t.ExtendedL2) && t.Format != "qcow2":
		return domain.Errorf(domain.KindConfigUnsupported, "format features only available with qcow2")
	}
	return nil
}

// encryptedImageOpts are the -o options and --object of an encrypted image,
// with the qemu-img format ("luks" for raw).
func encryptedImageOpts(vol *domain.VolDef, prealloc bool, key *luks.KeyFile) (qemuImgOpts, error) {
	// The checks qemuImgPlan makes are made by the callers in libvirt's
	// order for encrypted images; here only the options are wanted, so the
	// backing store (checked by the caller) is left out of the plan.
	plain := vol.Clone()
	plain.Backing = nil
	o, _, err := qemuImgPlan(nil, plain, nil, prealloc)
	if err != nil {
		return o, err
	}
	enc := vol.Target.Encryption
	o.format = luks.Driver(vol.Target.Format, enc)
	if key != nil {
		alias := luks.Alias(vol.Name)
		o.objects = []string{luks.SecretObject(alias, key.Path)}
		o.encryption = luks.CreateOptions(vol.Target.Format, alias, enc)
	}
	return o, nil
}

// createEncrypted makes an encrypted image with qemu-img create, checking
// what libvirt checks in the order it does: the passphrase is read first
// (an unknown secret is the first error a user sees), then the image's
// options, its backing store, its encryption.
func (v *FileVolumes) createEncrypted(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	if flags&^domain.VolCreatePreallocMetadata != 0 {
		return domain.ErrUnsupportedFlags(flags&^domain.VolCreatePreallocMetadata, "storageBackendCreateQemuImg")
	}
	prealloc := flags&domain.VolCreatePreallocMetadata != 0
	key, err := v.stage(ctx, pool, vol)
	if err != nil {
		return err
	}
	defer key.Remove()
	t := &vol.Target
	if err := luks.CheckQcow(t.Format, t.Encryption, domain.VolEncryption{}); err != nil {
		return err
	}
	if err := checkImageOptions(vol, prealloc); err != nil {
		return err
	}
	if err := luks.CheckRaw(t.Format, t.Encryption, "", domain.VolEncryption{}); err != nil {
		return err
	}
	var backing, backingFmt string
	if vol.Backing != nil && vol.Backing.Path != "" {
		if t.Format == imgformat.Raw {
			return domain.Errorf(domain.KindConfigUnsupported, "cannot set backing store for raw volume")
		}
		if backing, backingFmt, err = checkBacking(pool, vol, nil, t.Format, prealloc); err != nil {
			return err
		}
	}
	if err := luks.CheckEncryption(t.Format, t.Encryption); err != nil {
		return err
	}
	o, err := encryptedImageOpts(vol, prealloc, key)
	if err != nil {
		return err
	}
	o.backingFormat = backingFmt
	capacity := vol.Capacity
	if !vol.HasCapacity {
		capacity = 0
	}
	args := qemuImgCreateArgs(t.Path, capacity, backing, o)
	return luks.Retry(ctx, v.Log, func() error { return v.runImageTool(ctx, vol, args) })
}

// convertEncrypted copies src into vol when either is encrypted, as libvirt
// does in two steps: qemu-img create makes vol at its full capacity (with its
// own encryption, if any), then qemu-img convert -n writes src's data into
// it, each side opened with its own secret. A failed convert removes vol.
// A new secret for the copy re-encrypts, none decrypts.
func (v *FileVolumes) convertEncrypted(ctx context.Context, pool *domain.PoolDef, vol, src *domain.VolDef, srcFormat string, flags uint32) error {
	if flags&^domain.VolCreatePreallocMetadata != 0 {
		return domain.ErrUnsupportedFlags(flags&^domain.VolCreatePreallocMetadata, "storageBackendCreateQemuImg")
	}
	prealloc := flags&domain.VolCreatePreallocMetadata != 0
	key, err := v.stage(ctx, pool, vol)
	if err != nil {
		return err
	}
	defer key.Remove()
	// libvirt names the source's file after the destination pool too.
	srcKey, err := v.stage(ctx, pool, src)
	if err != nil {
		return err
	}
	defer srcKey.Remove()
	t := &vol.Target
	in := src.Target.Encryption
	if err := luks.CheckQcow(t.Format, t.Encryption, in); err != nil {
		return err
	}
	if err := checkImageOptions(vol, prealloc); err != nil {
		return err
	}
	if err := luks.CheckRaw(t.Format, t.Encryption, srcFormat, in); err != nil {
		return err
	}
	if vol.Backing != nil && vol.Backing.Path != "" && t.Format == imgformat.Raw {
		return domain.Errorf(domain.KindConfigUnsupported, "cannot set backing store for raw volume")
	}
	if t.Encryption.Encrypted() {
		if err := luks.CheckEncryption(t.Format, t.Encryption); err != nil {
			return err
		}
	}
	o, err := encryptedImageOpts(vol, prealloc, key)
	if err != nil {
		return err
	}
	// Step one: the empty image, backing store ignored as libvirt does when
	// copying.
	create := qemuImgCreateArgs(t.Path, vol.Capacity, "", o)
	if err := luks.Retry(ctx, v.Log, func() error { return v.runImageTool(ctx, vol, create) }); err != nil {
		return err
	}
	// Step two: the data.
	convert := luks.ConvertArgs(
		luks.ConvertSide{Volume: src.Name, Driver: luks.Driver(srcFormat, in), Format: srcFormat, Path: src.Target.Path, Key: srcKey},
		luks.ConvertSide{Volume: vol.Name, Driver: o.format, Format: t.Format, Path: t.Path, Key: key})
	if err := v.runAsOwner(ctx, t.Perms, ports.Command{Path: qemuImg, Args: convert}); err != nil {
		v.removeFile(t.Path, t.Perms)
		return v.qemuImgError(err, convert)
	}
	return nil
}

// resizeEncrypted is libvirt's storageBackendResizeQemuImg for an encrypted
// image: its secret (found by the volume's path when the definition names
// none, as after a refresh) opens the image for qemu-img resize.
func (v *FileVolumes) resizeEncrypted(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, capacity uint64) error {
	enc := vol.Target.Encryption
	if (enc.Format == "qcow" || enc.Format == "default") && (vol.Target.Format == "qcow" || vol.Target.Format == "qcow2") {
		return domain.Errorf(domain.KindConfigUnsupported, "resize of qcow2 encrypted image is not supported")
	}
	d := vol.Clone()
	v.Keys.LoadDefault(ctx, v.Log, d)
	if err := luks.CheckEncryption(d.Target.Format, d.Target.Encryption); err != nil {
		return err
	}
	key, err := v.stage(ctx, pool, d)
	if err != nil {
		return err
	}
	defer key.Remove()
	alias := luks.Alias(d.Name)
	args := qemuImgResizeEncryptedArgs(luks.SecretObject(alias, key.Path),
		luks.ResizeImage(d.Target.Format, d.Target.Path, alias), capacity, capacity < vol.Capacity)
	if _, err := v.Runner.Run(ctx, ports.Command{Path: qemuImg, Args: args}); err != nil {
		return v.qemuImgError(err, args)
	}
	return nil
}

// refreshEncryption settles vol's <encryption> after a re-read of its file:
// what the file says wins (a wiped LUKS image is plain raw again), but the
// secret and cipher the definition named stay, as libvirt keeps them; a
// volume that names no secret gets the one whose usage is its path.
func (v *FileVolumes) refreshEncryption(ctx context.Context, vol *domain.VolDef, before domain.VolEncryption) {
	if vol.Target.Encryption.Encrypted() && before.Format == vol.Target.Encryption.Format {
		vol.Target.Encryption = before
	}
	v.Keys.LoadDefault(ctx, v.Log, vol)
}
