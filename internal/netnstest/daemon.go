package netnstest

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// KillPIDFile sends sig to the process whose ID is in pidFile, if any: a
// daemon that detached from the test, maybe outside any namespace of it.
func KillPIDFile(pidFile string, sig syscall.Signal) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		_ = syscall.Kill(pid, sig)
	}
}

// tailBytes is how much of a log LogTail shows.
const tailBytes = 3000

// LogTail logs the end of each file that can be read (daemon logs, after
// a failure).
func LogTail(t testing.TB, files ...string) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if len(b) > tailBytes {
			b = b[len(b)-tailBytes:]
		}
		t.Logf("--- %s (last %d bytes)\n%s", f, tailBytes, b)
	}
}
