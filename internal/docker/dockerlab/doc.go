// Package dockerlab runs `latlab lab`'s comparison on real Docker networks:
// a latlab server in a container on every network mode, a client container
// next to it, and the same interleaved trials and statistics as the
// namespace lab, from the same loop: the containers are an
// experiment.Testbed and experiment.RunTestbed runs calibration, rounds and
// the stopping rule; this package keeps what is Docker's (image, networks,
// containers, waiting for servers to serve, the docker journal entry and its
// undo). It produces an experiment.Outcome, so experiment.Summarize,
// report.WriteLab and experiment.StoreRecorder work unchanged.
//
// The timed path is the same as lab's: the client runs in this process
// (workload.Run) on threads that enter the client container's network
// namespace (/proc/PID/ns/net); the server runs as `latlab serve` inside its
// container.
//
// It imports experiment (the loop, Outcome), docker (the Engine API),
// journal and the workers' types (workload, probe, offload, topo), and must
// not import cli, report, watch or web: it is below them and above
// experiment.
package dockerlab
