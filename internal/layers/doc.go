// Package layers holds no code: its test checks the import graph of every
// package under internal/ against the package map in docs/design.md, so
// the one-way data flow (spec → experiment → workers → stats → store →
// report) cannot erode one import at a time.
package layers
