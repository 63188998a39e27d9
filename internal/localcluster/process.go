package localcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// process is one server binary whose output goes to a log file in the cluster's
// temporary directory.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited
	err     error         // the result of Wait; read only after done is closed
}

// startProcess starts bin in its own process group. Not exec.CommandContext: the
// process must live as long as the Cluster, not as long as Start's context.
func startProcess(dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// stop kills the process group and waits for the process, so that the log file is
// closed before the directory holding it is removed.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = killGroup(p.cmd.Process.Pid)
	<-p.done
}

// exited is the error for a process that stopped on its own while we needed it.
func (p *process) exited() error {
	return fmt.Errorf("%s exited early (%v); end of %s:\n%s", p.name, p.err, p.logPath, p.logTail())
}

// logTail returns the last lines of the log: enough to show why a server failed
// without burying the test output.
func (p *process) logTail() string {
	const maxLines = 25
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
