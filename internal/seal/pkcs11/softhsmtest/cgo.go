//go:build cgo

package softhsmtest

// cgoEnabled: this build (and a vigil built beside it) has the PKCS#11 seal.
const cgoEnabled = true
