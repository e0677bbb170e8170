package testkit

import (
	"regexp"
	"strings"
	"testing"
)

// Virsher runs virsh against one server: a Daemon, an Anchor, or a
// read-only view of either.
type Virsher interface {
	Virsh(args ...string) (stdout, stderr string, code int)
}

// VirshOK runs virsh, fails the test at once unless it exits 0, and returns
// stdout.
func VirshOK(t testing.TB, v Virsher, args ...string) string {
	t.Helper()
	out, errOut, code := v.Virsh(args...)
	if code != 0 {
		t.Fatalf("virsh %s: rc=%d, want 0\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// VirshErr runs virsh and checks that it fails with every want in stderr.
// It returns stderr.
func VirshErr(t testing.TB, v Virsher, wants []string, args ...string) string {
	t.Helper()
	out, errOut, code := v.Virsh(args...)
	if code == 0 {
		t.Errorf("virsh %s: rc=0, want a failure with %q\nstdout: %s", strings.Join(args, " "), wants, out)
		return errOut
	}
	for _, w := range wants {
		if !strings.Contains(errOut, w) {
			t.Errorf("virsh %s: rc=%d, stderr lacks %q:\n%s", strings.Join(args, " "), code, w, errOut)
		}
	}
	return errOut
}

// VolRow is one row of `virsh vol-list --details`.
type VolRow struct {
	Name, Path, Type, Capacity, Allocation string
}

var columnGap = regexp.MustCompile(`\s{2,}`)

// VolList runs `vol-list POOL --details` and parses its table, keyed by
// volume name.
func VolList(t testing.TB, v Virsher, pool string) map[string]VolRow {
	t.Helper()
	out := VirshOK(t, v, "vol-list", pool, "--details")
	rows := map[string]VolRow{}
	body := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "---") {
			body = true
			continue
		}
		line = strings.TrimSpace(line)
		if !body || line == "" {
			continue
		}
		f := columnGap.Split(line, -1)
		if len(f) != 5 {
			t.Fatalf("vol-list %s --details: malformed row %q in:\n%s", pool, line, out)
		}
		rows[f[0]] = VolRow{Name: f[0], Path: f[1], Type: f[2], Capacity: f[3], Allocation: f[4]}
	}
	return rows
}

// VirshInfo parses the "Key: value" lines of `virsh pool-info` or
// `vol-info` output.
func VirshInfo(t testing.TB, v Virsher, args ...string) map[string]string {
	t.Helper()
	out := VirshOK(t, v, args...)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, val, ok := strings.Cut(line, ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
	}
	return m
}
