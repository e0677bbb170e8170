package ports

import (
	"context"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// SecretStore reads secrets from libvirt's secret driver (virtsecretd, or
// libvirtd on a monolithic host): the passphrases of encrypted volumes, and
// for other consumers iSCSI CHAP passwords and Ceph keys. The storage daemon
// never stores a secret; the one real implementation (adapters/secretclient)
// asks the secret driver each time.
//
// Errors are domain errors with the secret driver's code, domain and text
// ("Secret not found: no secret with matching uuid '...'"), so that a client
// reads what libvirt's own storage driver would report.
type SecretStore interface {
	// LookupSecret finds the secret ref names, as virSecretLookupByUUID or,
	// by usage, virSecretLookupByUsage with the usage type given. It does not
	// read the value.
	LookupSecret(ctx context.Context, ref domain.SecretRef, usage domain.SecretUsageType) (domain.Secret, error)
	// SecretValue returns the value of the secret ref names, checked to be of
	// the usage type given, as libvirt's virSecretGetSecretString: a secret
	// found by UUID for another use is refused. The caller owns the returned
	// slice and must zero it (clear) as soon as it is done with it; the value
	// must never reach a log line, an argv or an error text.
	SecretValue(ctx context.Context, ref domain.SecretRef, usage domain.SecretUsageType) ([]byte, error)
}
