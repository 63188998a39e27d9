//go:build unix && !linux

package localcluster

import "syscall"

// sysProcAttr puts the server in its own process group so Stop can kill the group.
// Outside Linux there is no Pdeathsig: a test binary that dies without calling Stop
// leaves the servers running.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }
