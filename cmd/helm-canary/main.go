// Command helm-canary is the Helm post-renderer and plugin for canary and blue-green
// releases on Istio. This file only maps errors to exit codes; the commands are in
// the other files of this package and the logic lives in renderer/ and stages/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set from plugin.yaml through -ldflags by the Makefile, hack/dist and the
// install hook.
var version = "dev"

func main() {
	// Ctrl-C or a cancelled CI job (SIGINT, SIGTERM) cancels the command's context:
	// Helm then marks an upgrade under way failed, as plain helm upgrade does,
	// instead of leaving it pending. A second signal kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := newRootCmd(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	var code exitCode
	if errors.As(err, &code) {
		// The command printed its report: only the exit code is left to say.
		os.Exit(int(code))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks bad command-line input (exit code 2), as opposed to a failed
// render (exit code 1).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitCode ends a command that has reported its outcome (rollout: 1 rolled back,
// 2 held) with that code and nothing more.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }
