// Package journal records every object latlab is about to create or change,
// before it does so, so that a run killed at any moment (kill -9 included)
// can be undone later by `latlab cleanup`.
//
// A journal is a file of JSON lines under a directory (default
// /run/latlab): a header, then one entry per object. Its owner holds an
// exclusive flock on it while it runs; the kernel drops the lock when the
// process dies, however it dies, so "can I take the lock?" is an exact test
// of "is the owner gone?", with no PID reuse races.
//
// Create makes the file under a temporary name, locks it, writes and syncs
// the header and only then links it into place, so a concurrent Sweep never
// sees a journal it could lock while its owner lives. An object that is put
// back during the run (an offload snapshot restored at the end) gets an
// "undone" line, so a kept journal never reverts it to a stale snapshot.
//
// It imports no latlab package: topo, offload and experiment journal what
// they create through it.
package journal
