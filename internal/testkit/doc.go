// Package testkit holds fakes for tests: an in-memory pool backend with real
// behaviour (MemoryBackend), an in-memory state store (MemoryStore), a recording
// event sink (RecordingSink), a trivial XML codec (FakeCodec) and a scripted
// command runner.
package testkit
