// Package reliability holds the daemon's robustness tests: hostile clients
// (tricklers, maximum-size frames, clients that never read, connection storms,
// streams cut in the middle), read-only enforcement over every procedure, path
// confinement of pool and volume names, and load and soak runs. Everything lives
// in the tests, except the client side they share with the load generator
// (daemonclient); this file only gives the package a home. See docs/reliability.md.
package reliability
