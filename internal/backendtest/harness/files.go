package harness

import (
	"context"
	"os"
	"path/filepath"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
)

// fileVolumes are the outside changes of the pools whose volumes are files
// in the target directory (dir, fs, netfs): a sparse file written or
// removed by someone else.
type fileVolumes struct{}

func (fileVolumes) AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error) {
	f, err := os.OpenFile(filepath.Join(pool.Target.Path, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return "", err
	}
	return name, f.Close()
}

func (fileVolumes) RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error {
	return os.Remove(filepath.Join(pool.Target.Path, name))
}

// fileOps are the volume operations of every file pool.
const fileOps = backendtest.CreateVol | backendtest.DeleteVol | backendtest.ResizeVol | backendtest.ShrinkVol |
	backendtest.CloneVol | backendtest.WipeVol | backendtest.UploadVol | backendtest.DownloadVol
