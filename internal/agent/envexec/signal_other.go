//go:build !unix

package envexec

import "os"

func signalNumber(os.Signal) int { return 2 }
