package geo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often Reloading looks at its file when the
// options do not say. Geo databases change weekly at most; a minute of delay
// costs nothing and a stat call per minute is free.
const DefaultReloadInterval = 60 * time.Second

// ReloadOptions configure a Reloading database.
type ReloadOptions struct {
	// Interval between two looks at the file; DefaultReloadInterval if zero.
	Interval time.Duration
	// OnError is told about a reload that failed (file missing, unreadable
	// or not a valid database). The previous database stays in use. It is
	// called from the watching goroutine, once per distinct failure, not on
	// every poll.
	OnError func(path string, err error)
	// OnReload is told when a new version of the file has been loaded.
	OnReload func(db *DB)
}

// Reloading is a database that follows its file: Start polls the file's
// identity, size and modification time, and when they change the new file
// is opened and swapped in atomically. Lookups never wait for a reload and
// always see one complete database, old or new.
type Reloading struct {
	path string
	opts ReloadOptions

	current atomic.Pointer[DB]

	mu          sync.Mutex // serialises CheckNow
	loaded      fileStamp  // the file version current came from
	failed      fileStamp  // the file version that last failed to load
	lastFailure string     // the last error reported, to report each failure once
	started     atomic.Bool
}

// fileStamp identifies a version of a file well enough to notice a
// replacement: atomic renames change the identity, in-place rewrites change
// size or modification time.
type fileStamp struct {
	info    os.FileInfo
	size    int64
	modTime time.Time
}

func stampOf(fi os.FileInfo) fileStamp {
	return fileStamp{info: fi, size: fi.Size(), modTime: fi.ModTime()}
}

func (s fileStamp) same(o fileStamp) bool {
	if s.info == nil || o.info == nil {
		return false
	}
	return s.size == o.size && s.modTime.Equal(o.modTime) && os.SameFile(s.info, o.info)
}

// OpenReloading opens the database at path; a file that cannot be opened now
// is an error (a geo rule with no data at start-up is a configuration
// mistake, not something to discover later). Call Start to follow changes.
func OpenReloading(path string, opts ReloadOptions) (*Reloading, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultReloadInterval
	}
	r := &Reloading{path: path, opts: opts}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	db, err := Open(path)
	if err != nil {
		return nil, err
	}
	r.current.Store(db)
	r.loaded = stampOf(fi)
	return r, nil
}

// Start polls the file every Interval in a goroutine until ctx is done.
// Calling Start more than once has no further effect.
func (r *Reloading) Start(ctx context.Context) {
	if !r.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		ticker := time.NewTicker(r.opts.Interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				_, _ = r.CheckNow() // failures go to OnError
			}
		}
	}()
}

// errFileChanging means the file changed while it was being read; the next
// look will read it again, so it is not reported as a failure.
var errFileChanging = errors.New("file changed while being read")

// CheckNow looks at the file once and reloads it if it changed. It reports
// whether a new database was swapped in, and the error of a failed reload
// (also passed to OnError the first time it happens).
func (r *Reloading) CheckNow() (reloaded bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	db, stamp, err := r.readIfChanged()
	switch {
	case errors.Is(err, errFileChanging):
		return false, nil
	case err != nil:
		if msg := err.Error(); msg != r.lastFailure {
			r.lastFailure = msg
			if r.opts.OnError != nil {
				r.opts.OnError(r.path, err)
			}
		}
		r.failed = stamp
		return false, err
	case db == nil:
		return false, nil
	}
	r.current.Store(db)
	r.loaded = stamp
	r.failed = fileStamp{}
	r.lastFailure = ""
	if r.opts.OnReload != nil {
		r.opts.OnReload(db)
	}
	return true, nil
}

// readIfChanged opens the file if it differs from the loaded version and
// from the version that last failed (a broken file is not re-read every
// poll; it is retried when it changes again). It returns a nil DB when
// nothing changed.
func (r *Reloading) readIfChanged() (*DB, fileStamp, error) {
	before, err := os.Stat(r.path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("geo: reload: %w", err)
	}
	stamp := stampOf(before)
	if stamp.same(r.loaded) {
		return nil, stamp, nil
	}
	if stamp.same(r.failed) {
		return nil, stamp, errors.New(r.lastFailure)
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		return nil, stamp, fmt.Errorf("geo: reload: %w", err)
	}
	after, err := os.Stat(r.path)
	if err != nil {
		return nil, stamp, fmt.Errorf("geo: reload: %w", err)
	}
	if !stampOf(after).same(stamp) {
		// Still being written (or replaced again): what was read may be a
		// torn mix of versions. Try again at the next look.
		return nil, stamp, errFileChanging
	}
	db, err := openBytes(r.path, data)
	if err != nil {
		return nil, stamp, fmt.Errorf("geo: reload: %w", err)
	}
	return db, stamp, nil
}

// DB returns the database currently in use.
func (r *Reloading) DB() *DB { return r.current.Load() }

// Country looks ip up in the current database.
func (r *Reloading) Country(ip netip.Addr) (string, bool) {
	return r.current.Load().Country(ip)
}

// ASN looks ip up in the current database.
func (r *Reloading) ASN(ip netip.Addr) (uint32, string, bool) {
	return r.current.Load().ASN(ip)
}

// Interface checks: every source can stand in for another.
var (
	_ Source = (*DB)(nil)
	_ Source = (*Reloading)(nil)
	_ Source = Embedded{}
)
