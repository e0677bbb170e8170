package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kernel is a kernel image installed on the host together with its modules.
type Kernel struct {
	// Version is the release string (uname -r of the guest), e.g. 6.1.0-57-amd64.
	Version string
	// Image is the bzImage QEMU boots with -kernel.
	Image string
	// ModuleDir is /lib/modules/VERSION, which the guest reads over 9p.
	ModuleDir string
}

// ErrNoKernel means no kernel image with its modules is installed: the lab
// cannot boot (apt-get install linux-image-amd64).
var ErrNoKernel = errors.New("lab: no kernel image with modules in /boot and /lib/modules (apt-get install linux-image-amd64)")

// FindKernel picks the newest kernel whose image is in bootDir
// (vmlinuz-VERSION) and whose modules are in modRoot/VERSION. The version is
// never written in our code: whatever Debian installed boots.
func FindKernel(bootDir, modRoot string) (Kernel, error) {
	images, err := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	if err != nil {
		return Kernel{}, err
	}
	var found []Kernel
	for _, img := range images {
		ver := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		mods := filepath.Join(modRoot, ver)
		if _, err := os.Stat(filepath.Join(mods, "modules.dep")); err != nil {
			continue
		}
		found = append(found, Kernel{Version: ver, Image: img, ModuleDir: mods})
	}
	if len(found) == 0 {
		return Kernel{}, ErrNoKernel
	}
	sort.Slice(found, func(i, j int) bool { return versionLess(found[i].Version, found[j].Version) })
	return found[len(found)-1], nil
}

// versionLess orders kernel release strings as people read them: runs of
// digits compare as numbers (6.1.0-57 after 6.1.0-9), the rest as text.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ca, ra := leadingRun(a)
		cb, rb := leadingRun(b)
		if ca != cb {
			da, db := isDigit(ca[0]), isDigit(cb[0])
			switch {
			case da && db:
				na, nb := strings.TrimLeft(ca, "0"), strings.TrimLeft(cb, "0")
				if len(na) != len(nb) {
					return len(na) < len(nb)
				}
				if na != nb {
					return na < nb
				}
			default:
				return ca < cb
			}
		}
		a, b = ra, rb
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// leadingRun splits s after its first run of digits or of non-digits.
func leadingRun(s string) (run, rest string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

// moduleDeps is what modules.dep says: for each module file (relative to the
// module directory), the files it needs loaded first.
type moduleDeps struct {
	deps   map[string][]string
	byName map[string]string
}

// readModuleDeps parses modDir/modules.dep.
func readModuleDeps(modDir string) (*moduleDeps, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	md := &moduleDeps{deps: map[string][]string{}, byName: map[string]string{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		md.deps[mod] = strings.Fields(deps)
		md.byName[moduleName(mod)] = mod
	}
	return md, sc.Err()
}

// moduleName is how modprobe names a module file: the base name without
// .ko and compression suffix, dashes as underscores.
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// loadOrder returns the module files to insmod, dependencies first, so that
// every name in names ends up loaded; names built into the kernel (listed in
// modules.builtin, or nowhere) are left out.
func (md *moduleDeps) loadOrder(names []string, builtin map[string]bool) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(file string) {
		if seen[file] {
			return
		}
		seen[file] = true
		for _, d := range md.deps[file] {
			visit(d)
		}
		order = append(order, file)
	}
	for _, n := range names {
		file, ok := md.byName[strings.ReplaceAll(n, "-", "_")]
		if !ok {
			if builtin[strings.ReplaceAll(n, "-", "_")] {
				continue
			}
			return nil, fmt.Errorf("lab: module %s is neither in modules.dep nor built in", n)
		}
		visit(file)
	}
	return order, nil
}

// readBuiltin lists the modules compiled into the kernel (modules.builtin).
func readBuiltin(modDir string) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, line := range strings.Fields(string(b)) {
		out[moduleName(line)] = true
	}
	return out, nil
}
