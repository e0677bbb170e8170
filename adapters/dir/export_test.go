package dir

import "golang.org/x/sys/unix"

// IsLocalFS reports whether path lies on one of localFS, for the tests that
// depend on where their temporary directory is.
func IsLocalFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && localFS[uint32(st.Type)]
}
