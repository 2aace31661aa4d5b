package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// certFile is one certificate and key pair on disk, with what was last
// loaded from it.
type certFile struct {
	certPath, keyPath string
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// fileCerts serves certificates read from files, chosen by SNI. The loaded
// set is swapped whole, so a handshake sees either the old set or the new
// one, never a certificate without its key.
type fileCerts struct {
	files []*certFile
	set   atomic.Pointer[certSet]
}

// certSet is the certificates in service, indexed by the names they cover.
type certSet struct {
	certs []*tls.Certificate // in config order; the first is the default
	exact map[string]*tls.Certificate
	wild  map[string]*tls.Certificate // "*.example.com" stored as "example.com"
}

func newFileCerts(pairs [][2]string) (*fileCerts, error) {
	fc := &fileCerts{}
	for _, p := range pairs {
		fc.files = append(fc.files, &certFile{certPath: p[0], keyPath: p[1]})
	}
	certs := make([]*tls.Certificate, len(fc.files))
	for i, f := range fc.files {
		c, err := f.load()
		if err != nil {
			return nil, err
		}
		certs[i] = c
	}
	fc.set.Store(indexCerts(certs))
	return fc, nil
}

// load reads the pair and notes the files' modification times.
func (f *certFile) load() (*tls.Certificate, error) {
	cs, err1 := os.Stat(f.certPath)
	ks, err2 := os.Stat(f.keyPath)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("tls: %w", firstErr(err1, err2))
	}
	c, err := tls.LoadX509KeyPair(f.certPath, f.keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", f.certPath, f.keyPath, err)
	}
	if len(c.Certificate) == 0 {
		return nil, fmt.Errorf("tls: %s holds no certificate", f.certPath)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: %s: %w", f.certPath, err)
		}
	}
	f.certMod, f.keyMod, f.certSize, f.keySize = cs.ModTime(), ks.ModTime(), cs.Size(), ks.Size()
	return &c, nil
}

// changed reports whether either file differs from what was loaded.
func (f *certFile) changed() bool {
	cs, err1 := os.Stat(f.certPath)
	ks, err2 := os.Stat(f.keyPath)
	if err1 != nil || err2 != nil {
		return false // a file being replaced; try again on the next poll
	}
	return !cs.ModTime().Equal(f.certMod) || !ks.ModTime().Equal(f.keyMod) || cs.Size() != f.certSize || ks.Size() != f.keySize
}

// reload loads the pairs whose files changed. A pair that does not load
// (the certificate written before its key, say) keeps the one in service;
// the next poll tries again. It returns what it loaded and what failed.
func (fc *fileCerts) reload() (loaded []string, errs []error) {
	old := fc.set.Load()
	certs := append([]*tls.Certificate(nil), old.certs...)
	for i, f := range fc.files {
		if !f.changed() {
			continue
		}
		c, err := f.load()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		certs[i] = c
		loaded = append(loaded, f.certPath)
	}
	if len(loaded) > 0 {
		fc.set.Store(indexCerts(certs))
	}
	return loaded, errs
}

func indexCerts(certs []*tls.Certificate) *certSet {
	s := &certSet{certs: certs, exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for _, c := range certs {
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		for _, ip := range c.Leaf.IPAddresses {
			names = append(names, ip.String())
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				if _, dup := s.wild[rest]; !dup {
					s.wild[rest] = c
				}
				continue
			}
			if _, dup := s.exact[n]; !dup {
				s.exact[n] = c
			}
		}
	}
	return s
}

// match finds the certificate for a server name: an exact name, then a
// wildcard one label deep (RFC 6125 6.4.3). ok is false when none covers
// the name; def is then the default (the first configured).
func (fc *fileCerts) match(name string) (c *tls.Certificate, ok bool) {
	s := fc.set.Load()
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if c := s.exact[name]; c != nil {
		return c, true
	}
	if _, rest, found := strings.Cut(name, "."); found {
		if c := s.wild[rest]; c != nil {
			return c, true
		}
	}
	return s.certs[0], false
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
