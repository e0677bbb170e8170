package blockdev

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Probe is what blkid found on a device: the signatures the fs and logical
// builds look for before writing over a device.
type Probe struct {
	Type   string // filesystem or other superblock type (ext4, xfs, LVM2_member, swap)
	PTType string // partition table type (gpt, dos)
}

// Empty reports whether no signature was found.
func (p Probe) Empty() bool { return p.Type == "" && p.PTType == "" }

// BlkidArgv probes a device for a filesystem or partition table signature.
// libvirt links libblkid; the command's export format carries the same
// TYPE and PTTYPE answers.
func BlkidArgv(dev string) []string { return []string{"blkid", "-p", "-o", "export", dev} }

// blkidNothingFound is blkid's exit status when the device carries no
// recognised signature.
const blkidNothingFound = 2

// RunBlkid probes dev through runner; blkid's "nothing found" is an empty
// probe. A failure to run blkid is returned as the runner gave it and output
// that cannot be read as a *BlkidOutputError, because the fs and logical
// backends word the two differently.
func RunBlkid(ctx context.Context, runner ports.CommandRunner, dev string) (Probe, error) {
	argv := BlkidArgv(dev)
	out, err := runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:]})
	if code, ok := ports.ExitStatus(err); ok && code == blkidNothingFound {
		return Probe{}, nil
	}
	if err != nil {
		return Probe{}, err
	}
	return ParseBlkid(out)
}

// BlkidOutputError is blkid output that is not the KEY=value lines of its
// export format. Its text names no package: fs puts it in a user-visible
// message.
type BlkidOutputError struct {
	Line string // the line without a KEY=, when that is what is wrong
	Err  error  // otherwise why the output could not be read (a line over the scanner's limit)
}

// Error says what is wrong with the output.
func (e *BlkidOutputError) Error() string {
	if e.Err != nil {
		return "reading blkid output: " + e.Err.Error()
	}
	return fmt.Sprintf("malformed blkid line %q", e.Line)
}

// Unwrap returns the read failure, if that is what went wrong.
func (e *BlkidOutputError) Unwrap() error { return e.Err }

// ParseBlkid parses `blkid -p -o export DEV`: KEY=value lines whose values
// carry blkid's backslash escapes ("LVM2\ 001"). Empty output (blkid's exit
// status 2, nothing found) is an empty probe. Each line is trimmed first,
// which would cut an escaped trailing space short; no TYPE or PTTYPE value
// has one.
func ParseBlkid(out []byte) (Probe, error) {
	var p Probe
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return Probe{}, &BlkidOutputError{Line: line}
		}
		v = unescapeBlkid(v)
		switch k {
		case "TYPE":
			p.Type = v
		case "PTTYPE":
			p.PTType = v
		}
	}
	if err := sc.Err(); err != nil {
		return Probe{}, &BlkidOutputError{Err: err}
	}
	return p, nil
}

func unescapeBlkid(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
