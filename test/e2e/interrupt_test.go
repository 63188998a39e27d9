package e2e

import (
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hazard 14: interrupted commands, and commands that run between the steps of
// another.

// background starts `helm canary ARGS -n ns` in a process group of its own, as a
// shell runs a foreground job, so that a signal reaches helm and the plugin both
// (what Ctrl-C does; a CI runner cancelling a job signals the group too).
func (h *helmEnv) background(t *testing.T, ns string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(h.bin, append([]string{"canary"}, append(args, "-n", ns)...)...)
	cmd.Env, cmd.Dir = h.env, h.home
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("helm%d canary %s: started (pid %d)", h.major, strings.Join(args, " "), cmd.Process.Pid)
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd, &out
}

// waitExit waits for a background command; err is its exit error.
func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("%s still running after %s", strings.Join(cmd.Args, " "), within)
		return nil
	}
}

// eventually polls cond every 200ms until it holds or the time is up.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// newestStored is the newest revision in Helm's storage and its status.
func newestStored(t *testing.T, release, ns string) (int, string) {
	t.Helper()
	revisions := storedRevisions(t, release, ns)
	newest := 0
	for v := range revisions {
		n, _ := strconv.Atoi(v)
		newest = max(newest, n)
	}
	return newest, revisions[strconv.Itoa(newest)]
}

// TestStableDuringFinalsDrain: a rollback run while final waits between its two
// upgrades wins; final stops, says so, and overwrites nothing.
func TestStableDuringFinalsDrain(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "swap")
		final, out := h.background(t, ns, "stage", "final", "pp", "--drain-time", "20s")
		eventually(t, 90*time.Second, "final's first step (traffic back on production) was never stored", func() bool {
			return strings.Contains(out.String(), "waiting")
		})
		drained, _ := newestStored(t, "pp", ns)
		h.stage(t, ns, "stable", "pp")
		rolledBack, _ := newestStored(t, "pp", ns)
		err := waitExit(t, final, 90*time.Second)
		t.Logf("final:\n%s", out.String())
		if err == nil {
			t.Errorf("final exited 0 after a rollback ran during its drain")
		}
		if msg := out.String(); !strings.Contains(msg, "not overwritten") || !strings.Contains(msg, fmt.Sprintf("revision %d", rolledBack)) {
			t.Errorf("final's message does not say which revision came between and that it was not overwritten:\n%s", msg)
		}
		if newest, status := newestStored(t, "pp", ns); newest != rolledBack || status != "deployed" {
			t.Errorf("newest revision %d (%s), want the rollback's %d deployed (final's drain was %d)", newest, status, rolledBack, drained)
		}
		wantRolledBack(t, h, ns, "stage stable during final's drain")
	})
}

// interrupt starts `stage 10` on release web with a pre-upgrade hook that never
// completes, waits until its revision is pending, and sends sig to the command's
// process group. It returns the revision and the command's output.
func interrupt(t *testing.T, h *helmEnv, ns string, sig syscall.Signal) (int, string) {
	t.Helper()
	before, _ := newestStored(t, commonRelease, ns)
	cmd, out := h.background(t, ns, "stage", "10", commonRelease, h.commonChart(), "--set", "image.tag=84", "--set", "slowHook.enabled=true", "--timeout", "3m")
	eventually(t, 90*time.Second, "the upgrade's revision never became pending", func() bool {
		n, status := newestStored(t, commonRelease, ns)
		return n == before+1 && status == "pending-upgrade"
	})
	time.Sleep(time.Second) // inside the hook's wait
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		t.Fatal(err)
	}
	err := waitExit(t, cmd, 60*time.Second)
	t.Logf("after %s: %v\n%s", sig, err, out.String())
	if err == nil {
		t.Errorf("stage 10 exited 0 after %s", sig)
	}
	return before + 1, out.String()
}

// TestSignalDuringUpgrade: SIGINT (Ctrl-C) and SIGTERM (a cancelled CI job) during
// an upgrade leave the revision failed, as plain helm upgrade does, and the release
// usable: the next stage command runs.
func TestSignalDuringUpgrade(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		h.stage(t, ns, "stable", commonRelease, h.commonChart(), "--install", "--set", "image.tag=83")
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			revision, _ := interrupt(t, h, ns, sig)
			eventually(t, 30*time.Second, fmt.Sprintf("after %s revision %d is not failed: %v", sig, revision, storedRevisions(t, commonRelease, ns)), func() bool {
				return storedRevisions(t, commonRelease, ns)[strconv.Itoa(revision)] == "failed"
			})
			// Usable: the same stage again, then back to stable, with no helm in between.
			h.stage(t, ns, "10", commonRelease, h.commonChart(), "--set", "image.tag=84")
			wantImages(t, commonName+"-canary at 10 after "+sig.String(), getDeployment(t, ns, commonName+"-canary"), productpageImage+":84")
			wantWeights(t, ns, commonName, map[string]int64{"production": 90, "canary": 10})
			h.mustRun(t, "canary", "rollback", commonRelease, "-n", ns)
			wantCommonStable(t, h, ns, "83", "rollback after "+sig.String())
		}
		for v, status := range storedRevisions(t, commonRelease, ns) {
			if strings.HasPrefix(status, "pending") {
				t.Errorf("revision %s is left %s", v, status)
			}
		}
	})
}

// TestKilledUpgradeThenRollback: SIGKILL leaves a revision pending that no command
// will ever finish. Other commands refuse it and name the recovery; `helm canary
// rollback` recovers it without plain helm.
func TestKilledUpgradeThenRollback(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		h.stage(t, ns, "stable", commonRelease, h.commonChart(), "--install", "--set", "image.tag=83")
		revision, _ := interrupt(t, h, ns, syscall.SIGKILL)
		time.Sleep(2 * time.Second)
		if status := storedRevisions(t, commonRelease, ns)[strconv.Itoa(revision)]; status != "pending-upgrade" {
			t.Fatalf("after SIGKILL revision %d is %s, want pending-upgrade (nothing left to record the failure)", revision, status)
		}
		before := storedRevisions(t, commonRelease, ns)
		_, stderr, err := h.run(t, "canary", "stage", "90", commonRelease, "-n", ns)
		if err == nil {
			t.Fatalf("stage 90 on a pending release succeeded")
		}
		if want := fmt.Sprintf("helm canary rollback %s -n %s", commonRelease, ns); !strings.Contains(stderr, want) {
			t.Errorf("stage 90's refusal does not give the recovery command %q:\n%s", want, stderr)
		}
		if after := storedRevisions(t, commonRelease, ns); !maps.Equal(before, after) {
			t.Errorf("the refused stage 90 changed the release's revisions: %v, before %v", after, before)
		}

		rollbackWithoutChart(t, h, ns, "canary", "rollback")
		wantCommonStable(t, h, ns, "83", "rollback of a killed upgrade")
		revisions := storedRevisions(t, commonRelease, ns)
		if revisions[strconv.Itoa(revision)] != "failed" {
			t.Errorf("the killed revision %d is %s after the rollback, want failed; %v", revision, revisions[strconv.Itoa(revision)], revisions)
		}
		for _, v := range slices.Sorted(maps.Keys(revisions)) {
			if strings.HasPrefix(revisions[v], "pending") {
				t.Errorf("revision %s is left %s", v, revisions[v])
			}
		}
		h.stage(t, ns, "10", commonRelease, h.commonChart(), "--set", "image.tag=84")
		wantWeights(t, ns, commonName, map[string]int64{"production": 90, "canary": 10})
	})
}
