//go:build !cgo

package softhsmtest

// cgoEnabled: without cgo there is no PKCS#11 seal to test.
const cgoEnabled = false
