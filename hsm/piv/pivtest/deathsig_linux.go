package pivtest

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes pcscd stop when the test binary dies without running
// its cleanups (a test timeout panics), so no orphan pcscd blocks the next
// run.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
