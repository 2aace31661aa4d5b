package obs

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRequestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 10 * idsPerBatch {
		id := NewRequestID()
		if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("id %q is not 16 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
	if a := testing.AllocsPerRun(1000, func() { _ = NewRequestID() }); a >= 1 {
		t.Errorf("a request id costs %.2f allocations, want under 1 (batched)", a)
	}
}

// syncBuf is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogWriterWritesEveryLineInOrder(t *testing.T) {
	var out syncBuf
	w := NewLogWriter(&out, 0)
	log := slog.New(slog.NewJSONHandler(w, nil))
	for i := range 1000 {
		log.Info("decision", "n", i)
	}
	w.Close()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1000 {
		t.Fatalf("%d lines written, want 1000", len(lines))
	}
	for i, l := range lines {
		if !strings.Contains(l, fmt.Sprintf(`"n":%d}`, i)) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
	if w.Dropped() != 0 {
		t.Fatalf("dropped %d with room to spare", w.Dropped())
	}
}

// blockedWriter stands for a log that cannot keep up (a full pipe).
type blockedWriter struct {
	release chan struct{}
	syncBuf
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.syncBuf.Write(p)
}

func TestLogWriterDropsRatherThanBlocks(t *testing.T) {
	out := &blockedWriter{release: make(chan struct{})}
	w := NewLogWriter(out, 16)
	start := time.Now()
	for range 10_000 {
		io.WriteString(w, "{\"msg\":\"decision\"}\n")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("10,000 writes to a stuck log took %v: the writer blocked", d)
	}
	dropped := w.Dropped()
	if dropped < 10_000-200 { // the queue, and what the writer took before it stuck
		t.Fatalf("dropped %d of 10,000 with a queue of 16, want nearly all", dropped)
	}
	close(out.release)
	w.Close()
	got := out.String()
	if !strings.Contains(got, fmt.Sprintf(`"dropped_total":%d`, dropped)) {
		t.Fatalf("the log does not say how many records were dropped (%d):\n%s", dropped, got)
	}
	kept := strings.Count(got, `"msg":"decision"`)
	if uint64(kept)+dropped != 10_000 {
		t.Fatalf("kept %d + dropped %d != 10,000", kept, dropped)
	}
}

func BenchmarkLogWriter(b *testing.B) {
	w := NewLogWriter(io.Discard, 0)
	line := []byte(`{"time":"2026-12-05T09:00:00Z","level":"INFO","msg":"decision","request_id":"0123456789abcdef","code":"path_forbidden"}` + "\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Write(line)
		}
	})
	w.Close()
}

// TestRequestIDValues: ids as header values are distinct one-element
// slices of capacity 1 (an append copies rather than writing into the
// batch), valid ids, and cost no allocation of their own.
func TestRequestIDValues(t *testing.T) {
	seen := map[string]bool{}
	var vals [][]string
	for range 3 * idsPerBatch {
		v := NewRequestIDValue()
		if len(v) != 1 || cap(v) != 1 || len(v[0]) != 16 || seen[v[0]] {
			t.Fatalf("value %q (len %d, cap %d): want one new 16-digit id, capacity 1", v, len(v), cap(v))
		}
		seen[v[0]] = true
		vals = append(vals, v)
	}
	_ = append(vals[0], "x")
	if vals[1][0] == "x" {
		t.Fatal("an append to one value wrote into the next")
	}
	// Later batches must not have rewritten earlier values.
	for i, v := range vals {
		if !seen[v[0]] || (i > 0 && v[0] == vals[i-1][0]) {
			t.Fatalf("value %d changed to %q", i, v[0])
		}
	}
	if a := testing.AllocsPerRun(1000, func() { _ = NewRequestIDValue() }); a >= 1 {
		t.Errorf("%.2f allocations per id value, want under 1", a)
	}
}
