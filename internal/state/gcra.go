package state

import (
	"math"
	"time"
)

// GCRA is the generic cell rate algorithm (ITU-T I.371; the "virtual
// scheduling" form): one number per key, the theoretical arrival time (TAT)
// of the next request if requests came exactly at the steady rate. A
// request at now is allowed when it would not push the TAT more than
// capacity×interval past now. Unlike a fixed window it has no boundary at
// which a client can send two windows' worth at once, and unlike a sliding
// log it keeps one integer per key, which is what makes a bounded memory
// table and a single-key Redis script possible.
//
// tat and now are in the same unit (nanoseconds here, microseconds in the
// Redis script, which mirrors this function line for line); cost is 1 for a
// charge and 0 for a peek. It returns the TAT to store and the answer.
func GCRA(tat, now, interval, capacity, cost int64) (int64, Result) {
	if tat < now {
		tat = now
	}
	tolerance := interval * capacity
	next := tat + interval*cost
	ahead := next - now
	if ahead > tolerance {
		return tat, Result{
			Allowed:    false,
			Remaining:  0,
			RetryAfter: time.Duration(ahead - tolerance),
			ResetAfter: time.Duration(tat - now),
		}
	}
	return next, Result{
		Allowed:    true,
		Remaining:  int((tolerance - ahead) / interval),
		ResetAfter: time.Duration(ahead),
	}
}

// slidingCount is the sliding-window estimate of events in the last window
// (Cloudflare's two-counter approximation): the current fixed window's
// count plus the previous one's, weighted by how much of the previous window
// still lies inside the sliding window, rounded to the nearest whole
// offence. Rounding (rather than truncating) makes a short burst that
// straddles a window boundary count in full (5 strikes just before it and 5
// just after count 10, not 9.9); rounding up instead would ban a client
// striking once every 50 s under "3 within 1m". prev and cur belong to the
// fixed windows starting at start-window and start; now lies in
// [start, start+window). The Redis script computes the same expression in
// the same order (floor(x+0.5): Lua 5.1 has no round).
func slidingCount(prev, cur uint32, start, now, window int64) int64 {
	elapsed := now - start
	if elapsed < 0 {
		elapsed = 0
	}
	if elapsed >= window || prev == 0 {
		return int64(cur)
	}
	return int64(math.Floor(float64(prev)*float64(window-elapsed)/float64(window)+0.5)) + int64(cur)
}

// roll moves a two-counter window to the fixed window containing now.
func roll(prev, cur uint32, start, now, window int64) (uint32, uint32, int64) {
	ws := now - floorMod(now, window)
	switch {
	case start == ws:
		return prev, cur, start
	case start == ws-window:
		return cur, 0, ws
	default:
		return 0, 0, ws
	}
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
