// Command insane configures insane devices, the Linux virtual network
// interfaces for fault injection, in the style of ip(8):
//
//	insane link add NAME [lower DEV] [mode pass | drop | percent P | time ON OFF | burst P B |
//	    gilbert P R [H [K]] | schedule STEP... [once]] [seed S] [carrier] [events]
//	    [delay D ...] [rate R [overhead O] [buffer B]] [duplicate P] [corrupt P [header]] [limit N]
//	insane link set NAME [lower DEV | nolower] [mode ...] [seed S] [carrier] [events] [reset-stats]
//	insane link del NAME
//	insane [-s] [-j [-p]] [-n NETNS] link show [NAME]
//	insane [-j] monitor
//
// carrier flaps the device's carrier with the windows of a time or
// schedule policy, and events has the kernel report every window's edge,
// which insane monitor prints. delay holds what the policy relays, rate
// sends it at R bits per second (tc's units: 10mbit), duplicate and corrupt
// send a percentage of it twice or with a bit flipped; "rx" before a
// policy's words makes them the receive policy's.
//
// DEV is the lower device, the one that relays what the policy lets
// through; "slave DEV" and "noslave", the words of the article that insane
// follows, are aliases of "lower DEV" and "nolower". "insane help" prints
// the whole grammar. The exit status is 0 on success,
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
