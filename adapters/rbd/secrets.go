package rbd

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// StoreSecrets reads cephx keys from libvirt's secret driver through
// ports.SecretStore, as libvirt's rbd backend does (virSecretGetSecretString
// with usage type ceph): by UUID, the secret then being checked to be a ceph
// one, or by its ceph usage id.
type StoreSecrets struct {
	Store ports.SecretStore
}

var _ SecretLookup = StoreSecrets{}

// CephKey returns the raw key the auth names; the caller zeroes it.
func (s StoreSecrets) CephKey(ctx context.Context, auth domain.PoolAuth) ([]byte, error) {
	ref, err := auth.Ref()
	if err != nil {
		return nil, err
	}
	return s.Store.SecretValue(ctx, ref, domain.SecretUsageCeph)
}

// keyDirPrefix names the private directory of one command's key file.
const keyDirPrefix = "virtstoraged-rbd-"

// SweepKeyDirs removes the key directories a killed daemon left in dir
// (Config.KeyDir), so that no key outlives the daemon that wrote it.
func SweepKeyDirs(dir string, log *logrus.Entry) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), keyDirPrefix) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil && log != nil {
			log.WithError(err).WithField("dir", e.Name()).Warn("rbd: cannot remove a key directory left behind")
		}
	}
}
