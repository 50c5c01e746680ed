//go:build !linux

package probe

import "errors"

var errNotSupported = errors.New("not supported")

func inNetNS(nsPath string, fn func() error) error {
	if nsPath != "" {
		return errors.New("network namespaces need Linux")
	}
	return fn()
}
