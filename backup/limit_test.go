package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

// fill is an endless stream of one base64 character, so an oversize body
// is otherwise a plausible backup and only its size is wrong.
type fill byte

func (f fill) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

func hashOf(r io.Reader) string {
	h := sha256.New()
	io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

// raw sends a request over a new connection: head (request line and
// headers, without the blank line), then body, chunked when asked, from a
// goroutine that stops when the server closes the connection. It returns
// the response as the server sent it, the length of head, and how many
// bytes the server read from the connection, counted once the server has
// closed it.
func (ts *testServer) raw(t *testing.T, head string, body io.Reader, chunked bool) (*http.Response, []byte, int, int64) {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A server that reads the body it should refuse blocks here and fails
	// the test at the deadline.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if chunked {
		head += "Transfer-Encoding: chunked\r\n"
	}
	head += "\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if body == nil {
			return
		}
		if chunked {
			cw := httputil.NewChunkedWriter(conn)
			if _, err := io.Copy(cw, body); err != nil {
				return // the server hung up: expected
			}
			cw.Close()
			io.WriteString(conn, "\r\n")
			return
		}
		io.Copy(conn, body)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if !resp.Close {
		t.Fatal("the server keeps the connection open after refusing the body")
	}
	// Wait for the server to close its end: after that it reads nothing
	// more, and its count is final.
	io.Copy(io.Discard, conn)
	conn.Close()
	<-done
	return resp, b, len(head), ts.conns.readFrom(conn.LocalAddr().String())
}

func rawHead(ts *testServer, who string, bodyHashHex string, extra string) string {
	h := "PUT /backup HTTP/1.1\r\nHost: authd.test\r\nX-Request-Id: test-request\r\n" + extra
	if who != "" {
		h += "X-Auth-Token: " + ts.wallet.sign(who, "PUT", "/backup", bodyHashHex) + "\r\n"
	}
	return h
}

// allocated returns the bytes the process allocated while f ran.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBodyLimit: exactly 1 MiB is accepted and one byte more refused; a
// declared Content-Length of 50 MiB is refused before a byte of body is
// read; a chunked 50 MiB body is refused after at most 1 MiB + 1 bytes, in
// bounded memory; and a valid signature over an oversize body still gets
// backup_too_large, without the Wallet ever being asked. Both with
// httperr.LimitBody outside Identify, as cmd/authd wires it, and without it,
// where Identify alone must hold the line.
func TestBodyLimit(t *testing.T) {
	const huge = 50 << 20
	hugeHash := hashOf(io.LimitReader(fill('A'), huge))
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		for i, v := range []struct {
			name string
			opt  serverOptions
		}{
			{"with LimitBody", serverOptions{}},
			{"Identify alone", serverOptions{noLimitBody: true}},
		} {
			t.Run(v.name, func(t *testing.T) {
				ts := newTestServer(t, db.DB, v.opt)
				who := ts.wallet.register(fmt.Sprintf("1LimitTester%d", i))
				exact := base64Body(t, MaxSize)

				r := ts.do(t, call{method: "PUT", body: exact, as: who})
				must(t, "PUT of exactly 1 MiB", r, 201, "")
				r = ts.do(t, call{method: "GET", as: who})
				if !bytes.Equal(r.body, exact) {
					t.Fatalf("GET after a 1 MiB PUT returned %d other bytes", len(r.body))
				}

				over := append(bytes.Clone(exact[:MaxSize-4]), "AAAAA"...)
				calls := ts.wallet.calls.Load()
				r = ts.do(t, call{method: "PUT", body: over, as: who})
				must(t, "PUT of 1 MiB + 1 byte (Content-Length)", r, 413, errors.BackupTooLarge)
				if ts.wallet.calls.Load() != calls {
					t.Error("the Wallet was asked about an oversize body")
				}

				ts.bodyRead.Store(0)
				resp, b, _, _ := ts.raw(t, rawHead(ts, who, bodyHash(over), ""), bytes.NewReader(over), true)
				if resp.StatusCode != 413 || !bytes.Contains(b, []byte(`"backup_too_large"`)) {
					t.Fatalf("chunked PUT of 1 MiB + 1 byte: %d %s", resp.StatusCode, b)
				}
				if n := ts.bodyRead.Load(); n != MaxSize+1 {
					t.Errorf("server read %d body bytes of a 1 MiB + 1 body, want exactly %d", n, MaxSize+1)
				}

				t.Run("declared 50 MiB", func(t *testing.T) {
					ts.bodyRead.Store(0)
					// Nothing but the head is ever sent: a server that tried to
					// read the body would wait for it until the deadline.
					resp, b, headLen, socket := ts.raw(t, rawHead(ts, who, hugeHash, "Content-Length: "+strconv.Itoa(huge)+"\r\n"), nil, false)
					if resp.StatusCode != 413 || !bytes.Contains(b, []byte(`"backup_too_large"`)) {
						t.Fatalf("declared 50 MiB: %d %s", resp.StatusCode, b)
					}
					if n := ts.bodyRead.Load(); n != 0 {
						t.Errorf("server read %d body bytes, want 0", n)
					}
					if socket != int64(headLen) {
						t.Errorf("server read %d bytes from the connection for a %d-byte head", socket, headLen)
					}
				})

				t.Run("chunked 50 MiB", func(t *testing.T) {
					token := ts.bearer.issue(who, Scope)
					for _, tc := range []struct {
						name    string
						head    string
						status  int
						code    string
						maxBody int64 // body bytes the server may read
					}{
						// The Wallet needs the body to check the signature:
						// it is read up to the limit, and refused there.
						{"X-Auth-Token", rawHead(ts, who, hugeHash, ""), 413, "backup_too_large", MaxSize + 1},
						// Bearer: authenticated first, read after, refused at
						// the limit.
						{"Bearer", rawHead(ts, "", "", "Authorization: Bearer "+token+"\r\n"), 413, "backup_too_large", MaxSize + 1},
						// No credentials: refused without reading a byte.
						{"anonymous", rawHead(ts, "", "", ""), 401, "missing_auth_token", 0},
					} {
						ts.bodyRead.Store(0)
						calls := ts.wallet.calls.Load()
						var resp *http.Response
						var b []byte
						var headLen int
						var socket int64
						alloc := allocated(func() {
							resp, b, headLen, socket = ts.raw(t, tc.head, io.LimitReader(fill('A'), huge), true)
						})
						if resp.StatusCode != tc.status || !bytes.Contains(b, []byte(`"`+tc.code+`"`)) {
							t.Fatalf("%s: chunked 50 MiB: %d %s", tc.name, resp.StatusCode, b)
						}
						if ts.wallet.calls.Load() != calls {
							t.Errorf("%s: the Wallet was asked about an oversize body", tc.name)
						}
						body := ts.bodyRead.Load()
						if body > tc.maxBody {
							t.Errorf("%s: server read %d body bytes, more than %d", tc.name, body, tc.maxBody)
						}
						// On the connection: the head, the chunk framing, the
						// server's 4 KiB read-ahead, and what net/http discards
						// by itself after the response (at most 256 KiB of a
						// chunked body, net/http's maxPostHandlerReadBytes):
						// nowhere near 50 MiB.
						if limit := int64(headLen) + tc.maxBody + 256<<10 + 16<<10; socket > limit {
							t.Errorf("%s: server read %d bytes from the connection, more than %d", tc.name, socket, limit)
						}
						// The body is read into one buffer grown by doubling:
						// about 2 MiB, whatever the size sent.
						if alloc > 4<<20 {
							t.Errorf("%s: refusing a 50 MiB body allocated %d bytes", tc.name, alloc)
						}
						t.Logf("%s: body bytes read %d, socket bytes read %d, allocated %d bytes", tc.name, body, socket, alloc)

						// And the cost does not grow with what is sent: a
						// 2 MiB body costs the same.
						small := allocated(func() {
							resp, _, _, _ = ts.raw(t, tc.head, io.LimitReader(fill('A'), 2<<20), true)
						})
						if resp.StatusCode != tc.status {
							t.Fatalf("%s: chunked 2 MiB: %d", tc.name, resp.StatusCode)
						}
						if d := int64(alloc) - int64(small); d > 512<<10 || d < -512<<10 {
							t.Errorf("%s: refusing 50 MiB allocated %d bytes, refusing 2 MiB %d", tc.name, alloc, small)
						}
					}
				})

				r = ts.do(t, call{method: "GET", as: who})
				if !bytes.Equal(r.body, exact) {
					t.Fatal("a refused oversize PUT changed the stored backup")
				}
			})
		}
	})
}
