package domain

import "fmt"

// SecretUsageType is libvirt's virSecretUsageType: what a secret of the
// secret driver is for. The values travel on the wire.
type SecretUsageType int32

// Secret usage types, in libvirt's order.
const (
	SecretUsageNone SecretUsageType = iota
	SecretUsageVolume
	SecretUsageCeph
	SecretUsageISCSI
	SecretUsageTLS
	SecretUsageVTPM
)

var secretUsageNames = []string{"none", "volume", "ceph", "iscsi", "tls", "vtpm"}

// String is the usage type's name in libvirt's secret XML (<usage type=...>).
func (t SecretUsageType) String() string {
	if t >= 0 && int(t) < len(secretUsageNames) {
		return secretUsageNames[t]
	}
	return fmt.Sprintf("%d", int32(t))
}

// SecretRef names a secret as libvirt's XML does (<secret uuid='...'/> or
// <secret usage='...'/>): by UUID, or by the usage id that the consumer's
// usage type gives it (a volume's path, a Ceph user name, an iSCSI target).
type SecretRef struct {
	// ByUUID selects UUID; otherwise the secret is looked up by Usage.
	ByUUID bool
	UUID   UUID
	Usage  string
}

// SecretByUUID names a secret by its UUID.
func SecretByUUID(u UUID) SecretRef { return SecretRef{ByUUID: true, UUID: u} }

// SecretByUsage names a secret by its usage id.
func SecretByUsage(usage string) SecretRef { return SecretRef{Usage: usage} }

// String describes the reference for logs ("uuid 1234-..." / "usage '/path'").
func (r SecretRef) String() string {
	if r.ByUUID {
		return "uuid " + r.UUID.String()
	}
	return fmt.Sprintf("usage '%s'", r.Usage)
}

// Secret is a secret as the secret driver describes it (remote_nonnull_secret).
type Secret struct {
	UUID      UUID
	UsageType SecretUsageType
	UsageID   string
}

// FromSecret is VIR_FROM_SECRET, the error domain of the secret driver.
const FromSecret int32 = 30

// ErrSecretUsage is libvirt's error (virSecretLookupSecret, domain none) for
// a secret found by UUID whose usage type is not the consumer's: a Ceph key
// named as a volume's passphrase.
func ErrSecretUsage(s Secret, want SecretUsageType) *Error {
	e := Errorf(KindInvalidArg, "secret with uuid %s is of type '%s' not expected '%s' type", s.UUID, s.UsageType, want)
	e.NoDomain = true
	return e
}

// ErrNoSecret is the secret driver's error for a secret that is not there:
// "no secret with matching uuid '...'" or "... usage '...'".
func ErrNoSecret(ref SecretRef) *Error {
	if ref.ByUUID {
		return &Error{Kind: KindNoSecret, Domain: FromSecret, Detail: fmt.Sprintf("no secret with matching uuid '%s'", ref.UUID)}
	}
	return &Error{Kind: KindNoSecret, Domain: FromSecret, Detail: fmt.Sprintf("no secret with matching usage '%s'", ref.Usage)}
}
