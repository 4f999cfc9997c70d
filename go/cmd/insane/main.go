// Command insane configures insane devices, the Linux virtual network
// interfaces for fault injection, in the style of ip(8):
//
//	insane link add NAME [slave DEV] [mode pass | mode percent P | mode time ON OFF] [seed S]
//	insane link set NAME [slave DEV | noslave] [mode ...] [seed S] [reset-stats]
//	insane link del NAME
//	insane [-s] [-j [-p]] [-n NETNS] link show [NAME]
//	insane monitor
//
// "insane help" prints the whole grammar. The exit status is 0 on success,
// 1 when the kernel refuses, 2 for a command line that does not parse.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, dialKernel, time.Now)
	stop()
	os.Exit(code)
}
