// Package syslog is the "syslog" audit sink: it sends each audit line as
// one message to syslog with package log/syslog, at severity INFO in the
// configured facility. It only moves bytes; formatting, hashing and
// retries belong to package audit.
//
// By default it writes to the local syslog daemon. Vigil's own options
// network and address send to another daemon (UDP, TCP or a Unix socket)
// instead. log/syslog sets no timeouts: a daemon that stops reading can
// block a write until the device's own timeout gives up on it.
//
// A write that fails after sending some of its lines cannot take them
// back: the device writes the whole batch again, so those lines appear
// twice.
package syslog
