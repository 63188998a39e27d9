package localcluster

import "syscall"

// sysProcAttr puts the server in its own process group, so Stop can kill the group
// and a Ctrl-C in the terminal reaches only the test binary, and asks the kernel to
// SIGKILL it when the test binary dies without calling Stop (panic, test timeout,
// signal). Pdeathsig fires when the thread that started the child exits; the Go
// runtime only ends threads that were locked with runtime.LockOSThread, which the
// goroutines calling Start are not, so in practice it means "when the process dies".
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }
