package state

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// The rate-limit decision in memory: the issue asks for under 300 ns and
// no allocation. Keys are made beforehand, as the engine makes them once
// per request for every rule.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = RuleKey("api-rate", IPKey(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})))
	}
	return keys
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	keys := benchKeys(4096)
	lim := Limit{Rate: 100, Per: time.Minute, Burst: 20}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		m.Allow(ctx, keys[i&4095], lim, t0.Add(time.Duration(i)*time.Microsecond))
	}
	reportCPU(b, cpu0)
}

func BenchmarkMemoryAllowParallel(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	keys := benchKeys(4096)
	lim := Limit{Rate: 100, Per: time.Minute, Burst: 20}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Allow(ctx, keys[i&4095], lim, t0.Add(time.Duration(i)*time.Microsecond))
			i++
		}
	})
}

// BenchmarkMemoryAllowFlood charges a new address every time into a table
// far smaller than the flood: every charge evicts.
func BenchmarkMemoryAllowFlood(b *testing.B) {
	m := NewMemory(MemoryOptions{MaxCounters: 1 << 14})
	keys := benchKeys(1 << 20)
	lim := Limit{Rate: 100, Per: time.Minute, Burst: 20}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		m.Allow(ctx, keys[i&(1<<20-1)], lim, t0)
	}
	reportCPU(b, cpu0)
}

func BenchmarkMemoryBanned(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	keys := benchKeys(4096)
	ctx := context.Background()
	for i := 0; i < len(keys); i += 2 {
		m.Ban(ctx, keys[i], t0.Add(time.Hour), "bench", t0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		m.Banned(ctx, keys[i&4095], t0)
	}
	reportCPU(b, cpu0)
}

func BenchmarkMemoryStrike(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	keys := benchKeys(4096)
	p := BanPolicy{Name: "login", After: 1 << 30, Within: time.Minute, BanFor: time.Minute}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		m.Strike(ctx, keys[i&4095], p, t0)
	}
	reportCPU(b, cpu0)
}

// BenchmarkBaselineMutexMap is the baseline for BenchmarkMemoryAllow in the
// same run: the least a shared counter can cost, one mutex and one map
// lookup and store of an int64, with no eviction and no bound.
func BenchmarkBaselineMutexMap(b *testing.B) {
	var mu sync.Mutex
	m := make(map[string]int64, 4096)
	keys := benchKeys(4096)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		mu.Lock()
		m[keys[i&4095]] += int64(i)
		mu.Unlock()
	}
	reportCPU(b, cpu0)
}
