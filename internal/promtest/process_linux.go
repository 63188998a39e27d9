package promtest

import (
	"os/exec"
	"syscall"
)

// A test binary that dies must not leave its Prometheus running.
func orphanProof(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
