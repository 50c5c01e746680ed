// Package testutil holds helpers for tests that need root, kernel features
// or external tools. Under CI=true a test that would skip fails instead, so
// a missing install step in .ci/run can never hide behind a skip.
//
// It is for tests only: no non-test code may import it except the
// test-only docker/dockertest. It imports topo (to create and delete test
// namespaces) and nothing above it.
package testutil
