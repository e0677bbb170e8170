// Package statefile keeps pool configs, autostart links and run-time status
// files in libvirt's on-disk layout, so that libvirtd and virtstoraged can
// read each other's state. Every write is atomic: a crash leaves either the
// old file or the new one, never a torn one.
package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/ports"
)

// tmpSuffix marks our half-written files. Temp names start with '.' and end
// with this suffix, so they never look like NAME.xml to us or to libvirtd.
const tmpSuffix = ".tmp"

// Store implements ports.StateStore over three directories.
type Store struct {
	configDir    string
	autostartDir string
	statusDir    string
	log          *logrus.Entry
}

var _ ports.StateStore = (*Store)(nil)

// New returns a Store for the given directories (libvirt's /etc/libvirt/storage,
// /etc/libvirt/storage/autostart and /run/libvirt/storage for a system daemon).
// The directories are created on first write, as libvirtd does.
func New(configDir, autostartDir, statusDir string, log *logrus.Entry) (*Store, error) {
	if configDir == "" || autostartDir == "" || statusDir == "" {
		return nil, errors.New("statefile: config, autostart and status directories are required")
	}
	abs := make([]string, 3)
	for i, d := range []string{configDir, autostartDir, statusDir} {
		a, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("statefile: %s: %w", d, err)
		}
		abs[i] = a
	}
	if log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		log = logrus.NewEntry(l)
	}
	return &Store{configDir: abs[0], autostartDir: abs[1], statusDir: abs[2], log: log}, nil
}

// CreateStatusDir makes the run-time status directory, as libvirt's storage
// driver does when it starts (g_mkdir_with_parents, 0777 under the umask): tools
// that look there find it whether or not a pool runs. 0755 is what libvirt gets
// under the usual umask 022; a looser umask does not make it world-writable.
func (s *Store) CreateStatusDir() error {
	if err := os.MkdirAll(s.statusDir, 0o755); err != nil {
		return fmt.Errorf("statefile: create %s: %w", s.statusDir, err)
	}
	return nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// checkName refuses names that would leave the directory or hide as a temp or
// dot file: a pool name becomes a file name here.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("statefile: invalid pool name %q", name)
	}
	return nil
}

func fileName(name string) string { return name + ".xml" }

// LoadConfigs reads every pool config, with its autostart flag. Leftover temp
// files from an interrupted write are removed; unreadable files are logged
// and skipped so that one bad file does not hide the other pools.
func (s *Store) LoadConfigs() ([]ports.StoredPool, error) {
	pools, err := s.load(s.configDir)
	if err != nil {
		return nil, err
	}
	s.cleanTemps(s.autostartDir)
	for i := range pools {
		pools[i].Autostart = s.autostartPointsToConfig(pools[i].Name)
	}
	return pools, nil
}

// LoadStatus reads every run-time status file (<poolstate> documents).
func (s *Store) LoadStatus() ([]ports.StoredPool, error) {
	return s.load(s.statusDir)
}

func (s *Store) load(dir string) ([]ports.StoredPool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("statefile: read %s: %w", dir, err)
	}
	var pools []ports.StoredPool
	for _, e := range entries {
		fn := e.Name()
		path := filepath.Join(dir, fn)
		if strings.HasPrefix(fn, ".") && strings.HasSuffix(fn, tmpSuffix) {
			s.removeTemp(path)
			continue
		}
		if !strings.HasSuffix(fn, ".xml") || !e.Type().IsRegular() {
			continue
		}
		name := strings.TrimSuffix(fn, ".xml")
		if err := checkName(name); err != nil {
			s.log.WithField("file", path).Warn("statefile: skipping file with an invalid pool name")
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			s.log.WithError(err).WithField("pool", name).Warn("statefile: skipping unreadable file")
			continue
		}
		pools = append(pools, ports.StoredPool{Name: name, XML: string(data)})
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	return pools, nil
}

func (s *Store) cleanTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if fn := e.Name(); strings.HasPrefix(fn, ".") && strings.HasSuffix(fn, tmpSuffix) {
			s.removeTemp(filepath.Join(dir, fn))
		}
	}
}

func (s *Store) removeTemp(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.WithError(err).WithField("file", path).Warn("statefile: cannot remove leftover temp file")
		return
	}
	s.log.WithField("file", path).Info("statefile: removed leftover temp file of an interrupted write")
}

// autostartPointsToConfig is libvirt's rule: a pool autostarts when its link
// resolves to its config file.
func (s *Store) autostartPointsToConfig(name string) bool {
	link, err := os.Stat(filepath.Join(s.autostartDir, fileName(name)))
	if err != nil {
		return false
	}
	cfg, err := os.Stat(filepath.Join(s.configDir, fileName(name)))
	if err != nil {
		return false
	}
	return os.SameFile(link, cfg)
}

// SaveConfig writes configDir/NAME.xml (0600) with libvirt's warning comment.
func (s *Store) SaveConfig(name, xml string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return writeAtomic(s.configDir, fileName(name), []byte(withWarning(name, xml)))
}

// SaveStatus writes statusDir/NAME.xml (0600); libvirtd puts the same warning
// comment on status files.
func (s *Store) SaveStatus(name, xml string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return writeAtomic(s.statusDir, fileName(name), []byte(withWarning(name, xml)))
}

// DeleteConfig removes the config file and the autostart link, as undefine
// does in libvirt. Missing files are not an error.
func (s *Store) DeleteConfig(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := removeSynced(s.autostartDir, fileName(name)); err != nil {
		return err
	}
	return removeSynced(s.configDir, fileName(name))
}

// DeleteStatus removes the status file; a missing file is not an error.
func (s *Store) DeleteStatus(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return removeSynced(s.statusDir, fileName(name))
}

// SetAutostart creates or removes autostartDir/NAME.xml, a symlink holding
// the absolute path of the config file.
func (s *Store) SetAutostart(name string, autostart bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !autostart {
		return removeSynced(s.autostartDir, fileName(name))
	}
	if err := os.MkdirAll(s.autostartDir, 0o755); err != nil {
		return fmt.Errorf("statefile: create %s: %w", s.autostartDir, err)
	}
	target := filepath.Join(s.configDir, fileName(name))
	final := filepath.Join(s.autostartDir, fileName(name))
	if cur, err := os.Readlink(final); err == nil && cur == target {
		return nil
	}
	// A symlink cannot be replaced in place: make it under a temp name and
	// rename it over the old one so that readers never see no link at all.
	tmp, err := tempName(s.autostartDir, fileName(name))
	if err != nil {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("statefile: autostart link for %s: %w", name, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("statefile: autostart link for %s: %w", name, err)
	}
	return syncDir(s.autostartDir)
}

// warningTemplate is the comment libvirtd 9.0 writes at the top of every pool
// config and status file (virXMLSaveFile), byte for byte.
const warningTemplate = `<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh pool-edit %s
or other application using the libvirt API.
-->

`

var uuidElem = regexp.MustCompile(`<uuid>\s*([^<]*?)\s*</uuid>`)

// shellUnsafe are the characters that make libvirt name the pool by UUID in
// the comment (virXMLPickShellSafeComment).
const shellUnsafe = "\r\t\n !\"#$&'()*;<>?[\\]^`{|}~"

func shellSafe(s string) bool {
	return s != "" && !strings.ContainsAny(s, shellUnsafe) && !strings.Contains(s, "--")
}

// withWarning prefixes the document with libvirt's comment. A document that
// already starts with a comment is written as given.
func withWarning(name, doc string) string {
	if strings.HasPrefix(strings.TrimSpace(doc), "<!--") {
		return doc
	}
	if !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	who := name
	if !shellSafe(who) {
		who = ""
		if m := uuidElem.FindStringSubmatch(doc); m != nil && shellSafe(m[1]) {
			who = m[1]
		}
	}
	if who == "" {
		return doc
	}
	return fmt.Sprintf(warningTemplate, who) + doc
}

func tempName(dir, base string) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".*"+tmpSuffix)
	if err != nil {
		return "", fmt.Errorf("statefile: temp file in %s: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return "", fmt.Errorf("statefile: temp file in %s: %w", dir, err)
	}
	return name, nil
}

// WriteAtomic replaces dir/base with data, mode 0600, the way every state
// file is written: temp file in the same directory, fsync, rename, fsync of
// the directory. Backends use it for files of other programs they update
// (iSCSI node records).
func WriteAtomic(dir, base string, data []byte) error { return writeAtomic(dir, base, data) }

// writeAtomic replaces dir/base with data: temp file in the same directory,
// fsync, rename, fsync of the directory.
func writeAtomic(dir, base string, data []byte) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("statefile: create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+base+".*"+tmpSuffix)
	if err != nil {
		return fmt.Errorf("statefile: write %s: %w", base, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("statefile: write %s: %w", base, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("statefile: write %s: %w", base, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("statefile: sync %s: %w", base, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("statefile: write %s: %w", base, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, base)); err != nil {
		return fmt.Errorf("statefile: write %s: %w", base, err)
	}
	return syncDir(dir)
}

func removeSynced(dir, base string) error {
	err := os.Remove(filepath.Join(dir, base))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("statefile: remove %s: %w", base, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or unlink in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("statefile: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("statefile: sync %s: %w", dir, err)
	}
	return nil
}
