// Package harness holds a backendtest.Harness for each pool backend. Each
// constructor takes what the environment provides (devices, an export, a
// runner for the storage tools, a sysfs tree), so that the same harness runs
// on the host, over loop devices, scripted mounts, LVM without device-mapper
// and a fake sysfs (the helpers here), and in the storage lab over real
// devices.
package harness

import (
	"context"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
)

// withEnv makes a HarnessMaker from an environment maker and a harness
// built over the environment.
func withEnv[E any](newEnv func(t *testing.T) (E, error), build func(t *testing.T, env E) backendtest.Harness) backendtest.HarnessMaker {
	return func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		env, err := newEnv(t)
		if err != nil {
			return nil, err
		}
		return build(t, env), nil
	}
}
