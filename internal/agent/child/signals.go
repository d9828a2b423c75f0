package child

import (
	"os"
	"strings"
)

// normalize turns "term", "TERM" and "SIGTERM" into "SIGTERM".
func normalize(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	return s
}

// SignalName returns sig's name ("SIGTERM") for messages.
func SignalName(sig os.Signal) string {
	for _, name := range signalOrder {
		if s, ok := ParseSignal(name); ok && s == sig {
			return name
		}
	}
	return sig.String()
}

// signalOrder lists the names SignalName tries.
var signalOrder = []string{"SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM"}
