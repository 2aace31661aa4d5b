// Package loadtest runs warden in-process, as `warden serve` does, under
// faults (upstreams that hang, reset or answer garbage: a short test of the
// default run) and under load (5,000 keep-alive clients plus 500 slowloris
// connections for 60 s: only with WARDEN_LONG=1, see scripts/load.sh and
// docs/load.md). It has no code outside its tests.
package loadtest
