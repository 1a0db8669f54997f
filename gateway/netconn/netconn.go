// Package netconn holds the gateway's net.Conn and net.Listener wrappers.
//
// YieldConn lets other goroutines run before a read that follows a write.
// A proxy reads right after it writes: the next request after a response,
// the backend's response after a request. The answer is rarely there yet,
// so the read fails with EAGAIN and the goroutine parks: a wasted system
// call per read. Under load, yielding first lets the other connections'
// goroutines run; by the time this one reads, its answer has usually
// arrived. With nothing else runnable, the yield returns at once.
package netconn

import (
	"net"
	"runtime"
)

// YieldConn wraps a connection so that a read following a write yields
// the processor first.
type YieldConn struct {
	net.Conn
	wrote bool
}

// Read yields once after a write, then reads.
func (c *YieldConn) Read(p []byte) (int, error) {
	if c.wrote {
		c.wrote = false
		runtime.Gosched()
	}
	return c.Conn.Read(p)
}

// Write writes and marks the next read as following a write.
func (c *YieldConn) Write(p []byte) (int, error) {
	c.wrote = true
	return c.Conn.Write(p)
}

// YieldListener wraps accepted connections in YieldConn.
type YieldListener struct {
	net.Listener
}

// Accept wraps the accepted connection.
func (l YieldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &YieldConn{Conn: c}, nil
}
