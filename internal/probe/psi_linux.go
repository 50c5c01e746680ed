package probe

import "golang.org/x/sys/unix"

// errNotSupported is what reading a PSI file returns when PSI is compiled
// in but disabled (psi=0).
var errNotSupported error = unix.EOPNOTSUPP
