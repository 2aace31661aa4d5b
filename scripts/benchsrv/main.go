// Command benchsrv is the Go side of scripts/bench.sh: the upstream every
// front proxies to, the bare httputil reverse proxy (the baseline), a
// minimal net/http server answering 403, and the CIDR lists the fronts
// load. It only ever listens on loopback, and stops after -for.
//
//	benchsrv upstream   -listen 127.0.0.1:P
//	benchsrv bare       -listen 127.0.0.1:P -upstream 127.0.0.1:U
//	benchsrv minimal403 -listen 127.0.0.1:P
//	benchsrv cidrs      -n 1000000 -out DIR   (warden, nginx geo, Caddy JSON forms)
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// body is what the upstream answers: small, so the fronts' own
// per-request work dominates.
var body = []byte(`{"order":12345,"items":[{"sku":"A-1","qty":2,"price":"9.90"},{"sku":"B-7","qty":1,"price":"24.00"}],"currency":"EUR","status":"shipped","updated":"2026-11-29T12:00:00Z"}` + "\n")

type copyBuffers struct{ pool sync.Pool }

func (c *copyBuffers) Get() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (c *copyBuffers) Put(b []byte) { c.pool.Put(&b) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchsrv upstream|bare|minimal403|cidrs [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fl := flag.NewFlagSet(mode, flag.ExitOnError)
	listen := fl.String("listen", "127.0.0.1:0", "loopback address to listen on")
	upstream := fl.String("upstream", "", "upstream host:port (bare)")
	n := fl.Int("n", 10000, "number of CIDRs (cidrs)")
	out := fl.String("out", "", "directory for the lists (cidrs)")
	life := fl.Duration("for", 10*time.Minute, "stop after this long")
	fl.Parse(os.Args[2:])

	if mode == "cidrs" {
		if err := writeLists(*n, *out); err != nil {
			fmt.Fprintln(os.Stderr, "benchsrv:", err)
			os.Exit(1)
		}
		return
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip, perr := netip.ParseAddr(host); err != nil || perr != nil || !ip.IsLoopback() {
		fmt.Fprintln(os.Stderr, "benchsrv: -listen must be a loopback ip:port")
		os.Exit(2)
	}
	var h http.Handler
	switch mode {
	case "upstream":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{"application/json"}
			w.Write(body)
		})
	case "minimal403":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "forbidden\n")
		})
	case "bare":
		// A tuned bare proxy: warden's pool size and recycled copy buffers.
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: *upstream})
		rp.Transport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
		rp.BufferPool = &copyBuffers{}
		h = rp
	default:
		fmt.Fprintln(os.Stderr, "benchsrv: unknown mode", mode)
		os.Exit(2)
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second}
	time.AfterFunc(*life, func() { os.Exit(0) })
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "benchsrv:", err)
		os.Exit(1)
	}
}

// writeLists writes n distinct IPv4 prefixes (3/4 hosts, 1/4 /24s, none in
// 10/8 or 127/8) as cidrs.txt (warden), geo.conf (nginx) and
// caddy-ranges.json (a JSON array for Caddy's remote_ip).
func writeLists(n int, dir string) error {
	rng := rand.New(rand.NewPCG(42, 7))
	seen := make(map[netip.Prefix]bool, n)
	list := make([]string, 0, n)
	for len(list) < n {
		first := byte(11 + rng.IntN(212))
		if first == 127 {
			continue
		}
		bits := 32
		if rng.IntN(4) == 0 {
			bits = 24
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{first, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}), bits).Masked()
		if !seen[p] {
			seen[p] = true
			list = append(list, p.String())
		}
	}
	write := func(name string, f func(w *bufio.Writer)) error {
		file, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(file, 1<<20)
		f(w)
		if err := w.Flush(); err != nil {
			return err
		}
		return file.Close()
	}
	if err := write("cidrs.txt", func(w *bufio.Writer) {
		for _, p := range list {
			w.WriteString(p + "\n")
		}
	}); err != nil {
		return err
	}
	if err := write("geo.conf", func(w *bufio.Writer) {
		for _, p := range list {
			w.WriteString(p + " 1;\n")
		}
	}); err != nil {
		return err
	}
	return write("caddy-ranges.json", func(w *bufio.Writer) {
		w.WriteString(`["` + strings.Join(list, `","`) + `"]`)
	})
}
