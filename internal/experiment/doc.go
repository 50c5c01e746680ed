// Package experiment expands what to compare into configurations and runs
// them as interleaved trials: every round runs every configuration once, in
// a fresh random order, so slow drift on a shared machine spreads over all
// configurations instead of landing on one. The trial loop (RunTestbed:
// calibration, rounds, the stopping rule) runs over a Testbed, where the
// clients and servers run: the namespace lab here (RunLab, over topo),
// Docker containers in dockerlab. It drives topo (the lab), workload (the
// measurements) and, through Summarize, stats.
//
// It owns specs (SpecFile, LabSpec, the CPU settings "auto", "none" and
// CPU lists), the plan (calibration, interleaved rounds, the stopping rule),
// the Outcome, its Summary and the recorder into store. It imports its
// workers (topo, offload, probe, workload), stats, store, journal
// and hist, and must not import what is above it: report, watch, web,
// docker/dockerlab or cli (nor cobra: no flags here).
package experiment
