package rpc

// UploadBuffersOut is how many upload buffers the server's connections have
// taken and not given back: queued for a writer, being written or being
// filled by a reader.
func (s *Server) UploadBuffersOut() int {
	n := 0
	for _, c := range s.main.clientsSnapshot() {
		c.chunks.mu.Lock()
		n += c.chunks.out
		c.chunks.mu.Unlock()
	}
	return n
}
