package netconn

import (
	"bufio"
	"net"
	"testing"
)

// The wrappers must be transparent: bytes, order and errors unchanged.
func TestYieldConnIsTransparent(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	yl := YieldListener{Listener: ln}
	defer yl.Close()
	go func() {
		c, err := yl.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, ok := c.(*YieldConn); !ok {
			t.Errorf("accepted %T, want *YieldConn", c)
		}
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte("echo:" + line)); err != nil {
				return
			}
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &YieldConn{Conn: raw}
	r := bufio.NewReader(c)
	for _, msg := range []string{"one\n", "two\n", "three\n"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != "echo:"+msg {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	c.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read on a closed connection succeeded")
	}
}

func TestYieldListenerPassesErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	yl := YieldListener{Listener: ln}
	yl.Close()
	if c, err := yl.Accept(); err == nil || c != nil {
		t.Errorf("Accept on a closed listener: %v, %v", c, err)
	}
}
