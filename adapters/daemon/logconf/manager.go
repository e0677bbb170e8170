package logconf

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// ModuleField is the entry field that names the module a message comes from
// ("rpc", "storage", "storage.dir"); filters match against it.
const ModuleField = "module"

// DefaultJournalSocket is where journald listens; its presence decides the
// default output of a daemonized process, as in libvirt.
const DefaultJournalSocket = "/run/systemd/journal/socket"

// Options say how the daemon runs, which decides the default output.
type Options struct {
	// Level is log_level (1 to 4); 0 means 3.
	Level int
	// Filters and Outputs are log_filters and log_outputs.
	Filters string
	Outputs string
	// Verbose (-v) lowers the level to debug.
	Verbose bool
	// Daemon is set for -d: the default output then leaves stderr.
	Daemon bool
	// DefaultLogFile is the file a daemon logs to when no output is set and
	// journald is absent (process.Paths.LogDir + "/virtstoraged.log").
	DefaultLogFile string
	// JournalSocket overrides DefaultJournalSocket, for tests.
	JournalSocket string
	// Stderr overrides os.Stderr, for tests.
	Stderr io.Writer
}

// Manager owns the outputs and filters of one logger and changes them at runtime.
type Manager struct {
	logger *logrus.Logger
	stderr io.Writer

	mu            sync.RWMutex
	level         int
	filters       []Filter
	outputs       []Output
	sinks         []sink
	defaultOutput string
	opts          Options // how the daemon runs, to recompute defaultOutput
}

// New installs the settings on logger (which the Manager then owns: its
// output, formatter, level and hooks are replaced) and returns the Manager.
func New(logger *logrus.Logger, o Options) (*Manager, error) {
	level := o.Level
	if level == 0 {
		level = PriorityWarn
	}
	if level < PriorityDebug || level > PriorityError {
		return nil, fmt.Errorf("logconf: log level %d not in 1 to 4", level)
	}
	if o.Verbose {
		level = PriorityDebug
	}
	m := &Manager{logger: logger, stderr: o.Stderr, level: level, opts: o}
	if m.stderr == nil {
		m.stderr = os.Stderr
	}
	m.defaultOutput = defaultOutput(level, o)

	filters, err := ParseFilters(o.Filters)
	if err != nil {
		return nil, err
	}
	m.filters = filters
	if err := m.SetOutputs(o.Outputs); err != nil {
		return nil, err
	}
	// Everything is written by the hook, which knows the outputs; logrus's
	// own writer would only duplicate lines.
	logger.SetOutput(io.Discard)
	logger.SetFormatter(nopFormatter{})
	logger.ReplaceHooks(logrus.LevelHooks{})
	logger.AddHook(&hook{m: m})
	m.mu.Lock()
	m.updateLoggerLevelLocked()
	m.mu.Unlock()
	return m, nil
}

// Apply is New for callers that only need to undo it: closer closes the
// files and syslog connections.
func Apply(logger *logrus.Logger, level int, filters, outputs string) (closer func(), err error) {
	m, err := New(logger, Options{Level: level, Filters: filters, Outputs: outputs})
	if err != nil {
		return nil, err
	}
	return m.Close, nil
}

func defaultOutput(level int, o Options) string {
	if !o.Daemon {
		return fmt.Sprintf("%d:%s", level, DestStderr)
	}
	sock := o.JournalSocket
	if sock == "" {
		sock = DefaultJournalSocket
	}
	if unix.Access(sock, unix.W_OK) == nil {
		// libvirt keeps debug out of the journal by default, since journald's
		// rate limit would then block the daemon.
		if level == PriorityDebug {
			level = PriorityInfo
		}
		return fmt.Sprintf("%d:%s", level, DestJournald)
	}
	return fmt.Sprintf("%d:%s:%s", level, DestFile, o.DefaultLogFile)
}

// Level returns log_level as in effect.
func (m *Manager) Level() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.level
}

// SetLevel changes log_level at once.
func (m *Manager) SetLevel(level int) error {
	if level < PriorityDebug || level > PriorityError {
		return fmt.Errorf("logconf: log level %d not in 1 to 4", level)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.level = level
	// As in libvirt, the default output logs at log_level: a new level changes
	// it too, and takes effect when the outputs are next set (SIGHUP does).
	m.defaultOutput = defaultOutput(level, m.opts)
	m.updateLoggerLevelLocked()
	return nil
}

// Filters returns the filters in libvirt's format (virt-admin daemon-log-filters).
func (m *Manager) Filters() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return FormatFilters(m.filters)
}

// SetFilters replaces the filters at once; "" removes them all.
func (m *Manager) SetFilters(s string) error {
	filters, err := ParseFilters(s)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.filters = filters
	m.updateLoggerLevelLocked()
	return nil
}

// Outputs returns the outputs in libvirt's format (virt-admin daemon-log-outputs).
func (m *Manager) Outputs() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return FormatOutputs(m.outputs)
}

// DefaultOutput is the output used when none is configured.
func (m *Manager) DefaultOutput() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.defaultOutput
}

// SetOutputs replaces the outputs at once; "" restores the default output.
// On error the previous outputs stay in place.
func (m *Manager) SetOutputs(s string) error {
	m.mu.RLock()
	def := m.defaultOutput
	m.mu.RUnlock()
	if strings.TrimSpace(s) == "" {
		s = def
	}
	outputs, err := ParseOutputs(s)
	if err != nil {
		return err
	}
	sinks := make([]sink, 0, len(outputs))
	for _, o := range outputs {
		sk, err := m.openSink(o, o.Dest == DestFile && o.String() == def)
		if err != nil {
			closeSinks(sinks)
			return err
		}
		sinks = append(sinks, sk)
	}
	m.mu.Lock()
	old := m.sinks
	m.outputs, m.sinks = outputs, sinks
	m.updateLoggerLevelLocked()
	m.mu.Unlock()
	closeSinks(old)
	return nil
}

// Reopen reopens file outputs so that a rotated log file is let go (SIGHUP).
func (m *Manager) Reopen() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range m.sinks {
		if f, ok := s.(*fileSink); ok {
			if err := f.reopen(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close closes every output; later entries are dropped.
func (m *Manager) Close() {
	m.mu.Lock()
	old := m.sinks
	m.outputs, m.sinks = nil, nil
	m.mu.Unlock()
	closeSinks(old)
}

// updateLoggerLevelLocked lowers logrus's own gate to the most verbose level
// any filter, the default level and any output could let through, so that
// callers checking IsLevelEnabled skip work nothing would print.
func (m *Manager) updateLoggerLevelLocked() {
	need := m.level
	for _, f := range m.filters {
		need = min(need, f.Priority)
	}
	outMin := PriorityError
	for _, o := range m.outputs {
		outMin = min(outMin, o.Priority)
	}
	need = max(need, outMin)
	m.logger.SetLevel(LevelOf(need))
}

// threshold returns the priority an entry of module must reach: the first
// matching filter's, else log_level.
func (m *Manager) thresholdLocked(module string) int {
	for _, f := range m.filters {
		if Match(f.Pattern, module) {
			return f.Priority
		}
	}
	return m.level
}

type nopFormatter struct{}

func (nopFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }

type hook struct{ m *Manager }

func (h *hook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *hook) Fire(e *logrus.Entry) error {
	module, _ := e.Data[ModuleField].(string)
	prio := PriorityOf(e.Level)
	h.m.mu.RLock()
	defer h.m.mu.RUnlock()
	if prio < h.m.thresholdLocked(module) {
		return nil
	}
	for i, s := range h.m.sinks {
		if prio >= h.m.outputs[i].Priority {
			s.write(prio, module, e)
		}
	}
	return nil
}

// formatLine renders an entry the way libvirt's log files look
// ("TIMESTAMP: PID: LEVEL : MESSAGE"), with the module and fields added.
func formatLine(prio int, module string, e *logrus.Entry, withTime bool) string {
	var b strings.Builder
	if withTime {
		b.WriteString(e.Time.UTC().Format("2006-01-02 15:04:05.000-0700"))
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(os.Getpid()))
		b.WriteString(": ")
	}
	b.WriteString(priorityName(prio))
	b.WriteString(" : ")
	if module != "" {
		b.WriteString(module)
		b.WriteString(" : ")
	}
	b.WriteString(e.Message)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if k != ModuleField {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(e.Data[k])
		if err, ok := e.Data[k].(error); ok {
			v = err.Error()
		}
		if v == "" || strings.ContainsAny(v, " \t\n\"=") {
			v = strconv.Quote(v)
		}
		b.WriteString(" ")
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(v)
	}
	b.WriteString("\n")
	return b.String()
}

type sink interface {
	write(prio int, module string, e *logrus.Entry)
	close()
}

func closeSinks(sinks []sink) {
	for _, s := range sinks {
		s.close()
	}
}

func (m *Manager) openSink(o Output, isDefault bool) (sink, error) {
	switch o.Dest {
	case DestStderr:
		return &writerSink{w: m.stderr}, nil
	case DestFile:
		if isDefault {
			// The default file lives in a directory that may not exist yet
			// (a fresh --root tree or ~/.cache/libvirt).
			if err := os.MkdirAll(filepath.Dir(o.Name), 0o700); err != nil {
				return nil, fmt.Errorf("logconf: log output %s: %w", o, err)
			}
		}
		f := &fileSink{path: o.Name}
		if err := f.reopen(); err != nil {
			return nil, err
		}
		return f, nil
	case DestSyslog:
		w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, o.Name)
		if err != nil {
			return nil, fmt.Errorf("logconf: log output %s: %w", o, err)
		}
		return &syslogSink{w: w}, nil
	case DestJournald:
		if !journal.Enabled() {
			// Asked for the journal on a host without one: better lines on
			// stderr (which systemd or the terminal keeps) than nothing.
			return &writerSink{w: m.stderr}, nil
		}
		return journalSink{}, nil
	}
	return nil, fmt.Errorf("logconf: unknown destination %q", o.Dest)
}

type writerSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *writerSink) write(prio int, module string, e *logrus.Entry) {
	line := formatLine(prio, module, e, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.w, line)
}

func (s *writerSink) close() {}

type fileSink struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (s *fileSink) reopen() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("logconf: open log file: %w", err)
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

func (s *fileSink) write(prio int, module string, e *logrus.Entry) {
	line := formatLine(prio, module, e, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		// One write per line: O_APPEND keeps lines whole even when another
		// process appends to the same file.
		_, _ = s.f.WriteString(line)
	}
}

func (s *fileSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}

type syslogSink struct{ w *syslog.Writer }

func (s *syslogSink) write(prio int, module string, e *logrus.Entry) {
	// syslog stamps time and pid itself.
	line := strings.TrimSuffix(formatLine(prio, module, e, false), "\n")
	switch prio {
	case PriorityDebug:
		_ = s.w.Debug(line)
	case PriorityInfo:
		_ = s.w.Info(line)
	case PriorityWarn:
		_ = s.w.Warning(line)
	default:
		_ = s.w.Err(line)
	}
}

func (s *syslogSink) close() { _ = s.w.Close() }

type journalSink struct{}

func (journalSink) write(prio int, module string, e *logrus.Entry) {
	vars := map[string]string{"SYSLOG_IDENTIFIER": filepath.Base(os.Args[0])}
	if module != "" {
		vars["LIBVIRT_SOURCE"] = module
	}
	for k, v := range e.Data {
		if k == ModuleField {
			continue
		}
		if name := journalVar(k); name != "" {
			vars[name] = fmt.Sprint(v)
		}
	}
	pri := map[int]journal.Priority{
		PriorityDebug: journal.PriDebug, PriorityInfo: journal.PriInfo,
		PriorityWarn: journal.PriWarning, PriorityError: journal.PriErr,
	}[prio]
	_ = journal.Send(e.Message, pri, vars)
}

func (journalSink) close() {}

// journalVar turns a logrus field name into a journal field name, which must
// be upper case letters, digits and '_' and not start with '_'.
func journalVar(k string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(k) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return strings.TrimLeft(b.String(), "_")
}
