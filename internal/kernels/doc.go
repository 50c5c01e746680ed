// Package kernels holds the kernel matrix: tests that boot Debian's
// distribution kernels (6.1 and 6.12) in a QEMU guest (testutil/microvm)
// and run latlab there, for what the host's kernel lacks — ipvlan, netkit,
// kprobes — so every lab mode is built, carries every workload and is torn
// down on the kernels users run.
//
// It has no code of its own; it is for tests only and imports nothing of
// latlab outside its tests.
package kernels
