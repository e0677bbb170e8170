// Package daemon groups the plumbing that makes the program a daemon: its
// config file (conffile), log outputs and filters (logconf), daemonizing,
// pid file and file descriptors (process), and listening sockets, systemd's
// included (sockets). Only cmd imports them (internal/archtest): the service
// and the port implementations work the same under any process model.
package daemon
