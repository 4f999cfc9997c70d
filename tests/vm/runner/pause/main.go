// Command pause is the sandbox ("pause") container's program for the guest
// test TestCRI (tests/vm/guest/cri_test.go), which packs it, built static,
// as an OCI image and imports it into containerd: a pod's sandbox holds the
// pod's namespaces and does nothing until the runtime stops it. It waits for
// SIGTERM or SIGINT and exits 0.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
