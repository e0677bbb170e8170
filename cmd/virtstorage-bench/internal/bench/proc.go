package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux
// ABI Go supports (the kernel scales to it whatever CONFIG_HZ is).
const clockTicks = 100

// ProcCPU is the CPU time of process pid and of its waited-for children (utime, stime,
// cutime, cstime), so that the qemu-img a daemon forks is charged to it.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: daemon cpu: %w", err)
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (time.Duration, error) {
	// comm may hold spaces and parentheses: the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: daemon cpu: malformed stat %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// After comm: state is field 3, utime..cstime are fields 14..17 (proc(5)).
	if len(f) < 15 {
		return 0, fmt.Errorf("bench: daemon cpu: short stat %q", b)
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: daemon cpu: stat field %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// ProcMem is the memory of a process from /proc/PID/status.
type ProcMem struct {
	// RSSKiB is VmRSS, the resident set now.
	RSSKiB int64
	// HWMKiB is VmHWM, the peak resident set.
	HWMKiB int64
	// Threads is the number of threads.
	Threads int64
}

// ProcStatus reads VmRSS, VmHWM and Threads of process pid.
func ProcStatus(pid int) (ProcMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMem{}, fmt.Errorf("bench: daemon memory: %w", err)
	}
	defer f.Close()
	var m ProcMem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSSKiB = n
		case "VmHWM":
			m.HWMKiB = n
		case "Threads":
			m.Threads = n
		}
	}
	return m, sc.Err()
}

// SelfCPU is the user+system CPU time this process used so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfReadBytes is rchar of this process: every byte read(2) returned, the daemon's
// socket included. storbench.py counts bytes on the wire the same way.
func selfReadBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
