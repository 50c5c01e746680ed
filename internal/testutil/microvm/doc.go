// Package microvm boots a distribution kernel in a QEMU virtual machine
// with latlab and a shell script, for the tests that need what the host's
// kernel lacks (ipvlan, netkit, kprobes): the same lab, run on the kernels
// users run.
//
// A kernel is a Debian kernel package (linux-image-amd64 resolves to
// bookworm's 6.1, linux-image-6.12-amd64 to its 6.12): fetched with
// `apt-get download`, unpacked with `dpkg-deb -x`, its modules indexed with
// `depmod -b`. The guest's initramfs is busybox (busybox-static), the
// modules a test names and their dependencies (decompressed, with their own
// modules.dep and modules.alias so the kernel's module autoloading works
// through busybox's modprobe), the files the test adds and an init that
// mounts proc, sys, dev, run, bpf, tracefs and cgroup2, loads the modules,
// runs the script and powers off. The script's exit status comes back on
// the console; what it writes to /dev/ttyS1 (raw) comes back as Data,
// byte for byte. The console is streamed into the test log as it arrives.
//
// Kernel packages, their unpacked trees and the initramfs base (busybox and
// modules) are cached under $LATLAB_MICROVM_CACHE (default
// /var/cache/latlab/microvm), so a second run boots without fetching or
// unpacking anything. KVM is used when /dev/kvm works for a nested guest
// (probed once per host boot, the verdict cached); otherwise TCG, which is
// functional but far slower: figures measured in a guest are no timing.
//
// It is for tests only. It needs qemu-system-x86, busybox-static, kmod
// (depmod), dpkg and apt; RequireRig skips (fails under CI=true) without
// them. It imports testutil and nothing else of latlab.
package microvm
