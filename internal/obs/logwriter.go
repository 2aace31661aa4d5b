package obs

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
)

// LogWriter is the decision log's io.Writer: Write copies the line into a
// bounded queue and returns at once; one goroutine writes the queue out in
// batches. When the queue is full the line is dropped and counted, never
// waited for: under a flood of refused requests a slow terminal, pipe or
// disk must not become the rate at which warden can refuse (back-pressure
// from the log would hand an attacker a lever on every other request). The
// number dropped is written into the log itself once it has room again, and
// is readable with Dropped.
//
// Each Write must be one whole record (slog's handlers write one line per
// call), so a drop never splits a line.
type LogWriter struct {
	out   io.Writer
	queue chan *[]byte
	// free holds the buffers the writer has written out, as many as the
	// queue: a channel rather than a sync.Pool, which the GC empties, so a
	// steady flood costs no allocation per record once the writer has
	// lagged as far as it ever will (at most the queue's length in buffers).
	free    chan *[]byte
	dropped atomic.Uint64
	// reported is how many drops were already written to the log.
	reported uint64
	done     chan struct{}
	closed   atomic.Bool
	close    sync.Once
}

// DefaultLogQueue is how many records wait, at most, for the writer.
const DefaultLogQueue = 8192

// NewLogWriter starts a writer to out holding up to queue records (0: the
// default). Close flushes it and stops its goroutine.
func NewLogWriter(out io.Writer, queue int) *LogWriter {
	if queue <= 0 {
		queue = DefaultLogQueue
	}
	w := &LogWriter{out: out, queue: make(chan *[]byte, queue), free: make(chan *[]byte, queue), done: make(chan struct{})}
	go w.run()
	return w
}

// Write queues a copy of p, or drops it when the queue is full. It never
// blocks and never fails: a log that cannot keep up is not an error of the
// request being logged.
func (w *LogWriter) Write(p []byte) (int, error) {
	if w.closed.Load() {
		w.dropped.Add(1)
		return len(p), nil
	}
	var bp *[]byte
	select {
	case bp = <-w.free:
	default:
		b := make([]byte, 0, max(1024, len(p)))
		bp = &b
	}
	*bp = append((*bp)[:0], p...)
	select {
	case w.queue <- bp:
	default:
		w.dropped.Add(1)
		w.recycle(bp)
	}
	return len(p), nil
}

// Dropped is how many records were dropped because the queue was full.
func (w *LogWriter) Dropped() uint64 { return w.dropped.Load() }

// run writes queued records, as many as are waiting in one write.
func (w *LogWriter) run() {
	defer close(w.done)
	batch := make([]byte, 0, 64<<10)
	for bp := range w.queue {
		if bp == nil { // Close's mark: everything before it is written
			return
		}
		batch = append(batch[:0], *bp...)
		w.recycle(bp)
	more:
		for len(batch) < 256<<10 {
			select {
			case bp := <-w.queue:
				if bp == nil {
					w.flush(batch)
					return
				}
				batch = append(batch, *bp...)
				w.recycle(bp)
			default:
				break more
			}
		}
		w.flush(batch)
	}
}

// flush writes a batch, with a note of records dropped since the last one.
func (w *LogWriter) flush(batch []byte) {
	if d := w.dropped.Load(); d != w.reported {
		batch = append(batch, `{"level":"WARN","msg":"decision log dropped records: the writer could not keep up","dropped_total":`...)
		batch = strconv.AppendUint(batch, d, 10)
		batch = append(batch, "}\n"...)
		w.reported = d
	}
	if len(batch) > 0 {
		w.out.Write(batch)
	}
}

func (w *LogWriter) recycle(bp *[]byte) {
	if cap(*bp) <= 64<<10 { // a huge record's buffer is not kept
		select {
		case w.free <- bp:
		default:
		}
	}
}

// Close writes out what is queued and stops the writer; later writes are
// dropped.
func (w *LogWriter) Close() error {
	w.close.Do(func() {
		w.closed.Store(true)
		// A mark rather than close(queue): a Write racing Close must not
		// send on a closed channel. Records queued behind the mark are lost
		// with the process.
		w.queue <- nil
	})
	<-w.done
	return nil
}
