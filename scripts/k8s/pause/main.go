// Command pause is the sandbox ("infra") container of the e2e cluster's pods,
// tagged registry.k8s.io/pause:3.10 because no registry can be reached. It
// holds the pod's namespaces open, reaps the zombies it inherits as the
// pod's PID 1, and exits on SIGINT or SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		// Reap every exited child; SIGCHLD signals coalesce.
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
