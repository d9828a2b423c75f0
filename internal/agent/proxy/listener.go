package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// listener is one open listener and the block it came from.
type listener struct {
	cfg config.AgentListener
	ln  net.Listener
	// socket is the unix socket's path, removed on close ("" for tcp).
	socket string
}

// openListener opens l: a tcp address or a unix socket (with its mode
// and owner), wrapped in TLS unless tls_disable.
func openListener(l config.AgentListener) (*listener, error) {
	var tlsConf *tls.Config
	if !l.TLSDisable {
		var err error
		if tlsConf, err = listenerTLS(l); err != nil {
			return nil, err
		}
	}
	out := &listener{cfg: l}
	switch l.Type {
	case "tcp":
		addr := l.Address
		if addr == "" {
			addr = config.DefaultAgentListenerAddress
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("proxy: listener tcp: %w", err)
		}
		out.ln = ln
	case "unix":
		ln, err := listenUnix(l)
		if err != nil {
			return nil, err
		}
		out.ln, out.socket = ln, l.Address
	default:
		return nil, fmt.Errorf("proxy: unsupported listener type %q: want tcp or unix", l.Type)
	}
	if tlsConf != nil {
		out.ln = tls.NewListener(out.ln, tlsConf)
	}
	return out, nil
}

// close closes the listener and removes its socket file.
func (l *listener) close() error {
	err := l.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if l.socket != "" {
		if rerr := os.Remove(l.socket); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("proxy: remove socket: %w", rerr))
		}
	}
	return err
}

// listenerTLS loads a listener's certificate and key.
func listenerTLS(l config.AgentListener) (*tls.Config, error) {
	if l.TLSCertFile == "" || l.TLSKeyFile == "" {
		return nil, fmt.Errorf("proxy: listener %s %q needs tls_cert_file and tls_key_file, or tls_disable", l.Type, l.Address)
	}
	cert, err := tls.LoadX509KeyPair(l.TLSCertFile, l.TLSKeyFile)
	if err != nil {
		// The error names the files, never their contents.
		return nil, fmt.Errorf("proxy: listener %s %q: load TLS certificate: %w", l.Type, l.Address, err)
	}
	minVer, err := config.TLSVersion(l.TLSMinVersion)
	if err != nil {
		return nil, fmt.Errorf("proxy: listener %s %q: %w", l.Type, l.Address, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: minVer}, nil
}

// listenUnix creates the socket of a unix listener. A stale socket at the
// path (nobody answers on it) is replaced; a live one is "in use"; any
// other file is left alone and refused. The socket is made under a
// temporary name, given its mode and owner, and only then renamed into
// place, so that no process can connect while its permissions are still
// the default ones.
func listenUnix(l config.AgentListener) (net.Listener, error) {
	path := l.Address
	if path == "" {
		return nil, errors.New(`proxy: listener "unix" needs an address (the socket's path)`)
	}
	mode, uid, gid, err := socketPerms(l)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("proxy: listener unix %q: the path exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("proxy: listener unix %q: address already in use", path)
		}
	}
	tmp := filepath.Join(filepath.Dir(path), ".vigil-"+secret.RandomBase62(10)+".sock")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("proxy: listener unix %q: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	// The socket is renamed: Close must not unlink the temporary name
	// (the listener's close removes the real path).
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		_ = ul.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("proxy: listener unix %q: %w", path, err)
	}
	if mode != 0 {
		if err := os.Chmod(tmp, mode); err != nil {
			return fail(err)
		}
	}
	if uid != -1 || gid != -1 {
		if err := os.Lchown(tmp, uid, gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return renamedUnix{ul, &net.UnixAddr{Name: path, Net: "unix"}}, nil
}

// renamedUnix is a unix listener whose socket was renamed after it was
// bound: it reports the path clients connect to.
type renamedUnix struct {
	*net.UnixListener
	addr *net.UnixAddr
}

func (l renamedUnix) Addr() net.Addr { return l.addr }

// socketPerms reads socket_mode (octal, 0 when unset), socket_user and
// socket_group (a name or a number, -1 when unset).
func socketPerms(l config.AgentListener) (mode fs.FileMode, uid, gid int, err error) {
	uid, gid = -1, -1
	if l.SocketMode != "" {
		m, perr := strconv.ParseUint(l.SocketMode, 8, 32)
		if perr != nil || m&^uint64(fs.ModePerm) != 0 {
			return 0, 0, 0, fmt.Errorf("proxy: listener unix %q: invalid socket_mode %q: want octal permissions such as 0660", l.Address, l.SocketMode)
		}
		mode = fs.FileMode(m)
	}
	if l.SocketUser != "" {
		if uid, err = lookupID(l.SocketUser, func(n string) (string, error) {
			u, err := user.Lookup(n)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		}); err != nil {
			return 0, 0, 0, fmt.Errorf("proxy: listener unix %q: socket_user: %w", l.Address, err)
		}
	}
	if l.SocketGroup != "" {
		if gid, err = lookupID(l.SocketGroup, func(n string) (string, error) {
			g, err := user.LookupGroup(n)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		}); err != nil {
			return 0, 0, 0, fmt.Errorf("proxy: listener unix %q: socket_group: %w", l.Address, err)
		}
	}
	return mode, uid, gid, nil
}

// lookupID returns s as a number, or the number lookup gives for the
// name s.
func lookupID(s string, lookup func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	id, err := lookup(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(id)
}
