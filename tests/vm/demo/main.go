// Command insane-demo replays the article's experiment inside the test VM
// (make demo): host borea sends numbered UDP datagrams to host morgana
// through insane0, which the insane CLI switches between the three modes,
// then the later ones (bursts, schedules, flaps, delay and jitter, rate,
// duplication and corruption, both directions). For each mode it prints
// what was sent, what morgana received, what was dropped or delayed and
// insane's own counters, checks the numbers against the policy, and exits
// non-zero if any check fails.
//
// It needs root, iproute2, the insane module and the insane CLI in PATH, and
// it changes the machine's network configuration, so it runs only in the VM.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

const (
	borea, morgana     = "borea", "morgana"
	boreaIP, morganaIP = "192.0.2.1", "192.0.2.2"
	port               = 4242
)

// failures counts checks that did not hold.
var failures int

func main() {
	if _, err := os.Stat("/etc/vmtest/mode"); err != nil {
		fmt.Fprintln(os.Stderr, "insane-demo changes the network configuration and runs only in the test VM: use make demo")
		os.Exit(2)
	}
	if err := demo(); err != nil {
		fmt.Fprintf(os.Stderr, "insane-demo: %v\n", err)
		os.Exit(1)
	}
	if failures > 0 {
		fmt.Printf("\ninsane-demo: %d checks failed\n", failures)
		os.Exit(1)
	}
	fmt.Println("\ninsane-demo: every check held")
}

// sh runs a command, printing it as typed at host's prompt first.
func sh(host string, args ...string) (string, error) {
	prompt := "#"
	full := args
	if host != "" {
		prompt = host + "#"
		full = append([]string{"ip", "netns", "exec", host}, args...)
	}
	fmt.Printf("%s %s\n", prompt, strings.Join(args, " "))
	out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func shAll(cmds [][]string) error {
	for _, c := range cmds {
		if _, err := sh(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// cannotJudge says why a check could not be made, without failing: on a
// busy machine a command or the sender can stall for longer than a window.
func cannotJudge(format string, args ...any) {
	fmt.Printf("  [n/a ] could not judge: %s\n", fmt.Sprintf(format, args...))
}

// decided returns the bracket of datagram k's decision, as offsets from the
// bracket [start, set] of the command that set the policy: the kernel
// decided it during its send, after sent.At[k] and before sent.At[k+1]
// (read after the send returned), on the same monotonic clock. ok is false
// for the last datagram, whose send has no end in sent.
func decided(sent vmnet.Sent, k int, start, set time.Time) (lo, hi time.Duration, ok bool) {
	if k+1 >= len(sent.At) {
		return 0, 0, false
	}
	return sent.At[k].Sub(set), sent.At[k+1].Sub(start), true
}

func check(ok bool, format string, args ...any) {
	verdict := "ok  "
	if !ok {
		verdict = "FAIL"
		failures++
	}
	fmt.Printf("  [%s] %s\n", verdict, fmt.Sprintf(format, args...))
}

func demo() error {
	fmt.Println("== Two hosts: borea and morgana (network namespaces) joined by a veth pair")
	err := shAll([][]string{
		{"", "ip", "netns", "add", borea},
		{"", "ip", "netns", "add", morgana},
		{"", "ip", "link", "add", "veth0", "netns", borea, "type", "veth", "peer", "name", "veth1", "netns", morgana},
		{borea, "ip", "addr", "add", boreaIP + "/24", "dev", "veth0"},
		{morgana, "ip", "addr", "add", morganaIP + "/24", "dev", "veth1"},
		{borea, "ip", "link", "set", "veth0", "up"},
		{morgana, "ip", "link", "set", "veth1", "up"},
		{borea, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0"},
		// Room for thousands of datagrams at the receiver while a busy
		// machine keeps it from reading (the receivers ask for 4 MB).
		{"", "sysctl", "-q", "-w", "net.core.rmem_max=16777216"},
	})
	if err != nil {
		return err
	}
	fmt.Println("\n== On borea: insane0 on veth0, with borea's address, and morgana routed through it")
	err = shAll([][]string{
		{borea, "insane", "link", "add", "insane0", "lower", "veth0", "mode", "pass"},
		// Keep IPv6 chatter out of the counters.
		{borea, "sysctl", "-q", "-w", "net.ipv6.conf.insane0.disable_ipv6=1"},
		{borea, "ip", "addr", "add", boreaIP + "/32", "dev", "insane0"},
		{borea, "ip", "link", "set", "insane0", "up"},
		{borea, "ip", "route", "add", morganaIP, "dev", "insane0"},
	})
	if err != nil {
		return err
	}
	// The operational state follows the carrier through linkwatch, a
	// moment after the device comes up.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := exec.Command("ip", "netns", "exec", borea, "cat", "/sys/class/net/insane0/operstate").Output()
		if err == nil && strings.TrimSpace(string(st)) == "up" {
			break
		}
	}
	out, err := sh(borea, "ip", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)

	steps := []func() error{passMode, percentMode, seedMode, timeMode, burstMode, scheduleMode, flapMode, delayMode, rateMode, extrasMode, bothWays}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

var run uint64

// flow sends count datagrams, interval apart, from borea to morgana and
// returns what was sent and received.
func flow(count int, interval time.Duration) (vmnet.Sent, vmnet.Received, error) {
	return flowFrom(borea, morgana, morganaIP, count, interval)
}

// flowFrom sends count datagrams, interval apart, from host from to host to
// at address toIP, and returns what was sent and received.
func flowFrom(from, to, toIP string, count int, interval time.Duration) (vmnet.Sent, vmnet.Received, error) {
	run++
	r, err := vmnet.Listen(to, fmt.Sprintf("%s:%d", toIP, port), run)
	if err != nil {
		return vmnet.Sent{}, vmnet.Received{}, err
	}
	sent, err := vmnet.Send(from, fmt.Sprintf("%s:%d", toIP, port), vmnet.SendOptions{Count: count, Interval: interval, Run: run})
	if err != nil {
		r.Close()
		return sent, vmnet.Received{}, err
	}
	r.Wait(count, 300*time.Millisecond, 10*time.Second)
	return sent, r.Close(), nil
}

// counters is the part of `insane -j -s link show` the demo checks.
type counters struct {
	Ifname string `json:"ifname"`
	Stats  *struct {
		RelayedPackets   uint64 `json:"relayed_packets"`
		DropPolicy       uint64 `json:"drop_policy"`
		RxRelayedPackets uint64 `json:"rx_relayed_packets"`
		RxDropPolicy     uint64 `json:"rx_drop_policy"`
		DropQueueFull    uint64 `json:"drop_queue_full"`
		HeldPackets      uint64 `json:"held_packets"`
		HeldBytes        uint64 `json:"held_bytes"`
	} `json:"stats"`
}

// flowBack sends count datagrams, interval apart, from morgana to borea:
// the direction the receive policy decides.
func flowBack(count int, interval time.Duration) (vmnet.Sent, vmnet.Received, error) {
	return flowFrom(morgana, borea, boreaIP, count, interval)
}

// bothWays is what the article said could not be done: the same route
// makes morgana unreliable in both directions, and its replies come in on
// insane0, so strict reverse path filtering holds.
func bothWays() error {
	fmt.Println("\n== both directions: transmit 90 %, receive 90 %, strict rp_filter on borea")
	err := shAll([][]string{
		{borea, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=1"},
		{borea, "sysctl", "-q", "-w", "net.ipv4.conf.veth0.rp_filter=1"},
		{borea, "insane", "link", "set", "insane0", "mode", "percent", "90", "rx", "mode", "percent", "90", "reset-stats"},
	})
	if err != nil {
		return err
	}
	out, err := sh(borea, "insane", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)
	check(strings.Contains(out, "mode percent 90 rx mode percent 90"), "show prints both policies")

	const n, p = 2000, 0.9
	// Borea speaks first, so morgana knows its address (ARP stays on veth0).
	sentOut, rcvdOut, err := flow(n, 250*time.Microsecond)
	if err != nil {
		return err
	}
	sentIn, rcvdIn, err := flowBack(n, 250*time.Microsecond)
	if err != nil {
		return err
	}
	fmt.Printf("  borea -> morgana: sent %d, received %d\n", n, len(rcvdOut.Seqs))
	fmt.Printf("  morgana -> borea: sent %d, received %d (came in on insane0)\n", n, len(rcvdIn.Seqs))
	out, err = sh(borea, "insane", "-s", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)
	js, err := exec.Command("ip", "netns", "exec", borea, "insane", "-j", "-s", "link", "show", "insane0").Output()
	if err != nil {
		return fmt.Errorf("insane -j -s link show insane0: %v", err)
	}
	var devs []counters
	if err := json.Unmarshal(js, &devs); err != nil || len(devs) != 1 || devs[0].Stats == nil {
		return fmt.Errorf("insane -j -s link show insane0: %v", err)
	}
	s := devs[0].Stats
	mean, sigma := n*p, math.Sqrt(n*p*(1-p))
	for _, d := range []struct {
		what string
		got  int
	}{{"transmitted", len(rcvdOut.Seqs)}, {"received", len(rcvdIn.Seqs)}} {
		check(math.Abs(float64(d.got)-mean) <= 4*sigma, "%s %d is within 4 sigma of %.0f (%.0f..%.0f)", d.what, d.got, mean, mean-4*sigma, mean+4*sigma)
	}
	check(sentOut.Errors == 0 && sentIn.Errors == 0, "every send was accepted (%d, %d refused)", sentOut.Errors, sentIn.Errors)
	check(s.RxRelayedPackets == uint64(len(rcvdIn.Seqs)), "insane passed up %d = borea received %d", s.RxRelayedPackets, len(rcvdIn.Seqs))
	check(s.RxDropPolicy == uint64(n-len(rcvdIn.Seqs)), "insane dropped on receive %d = sent - received %d", s.RxDropPolicy, n-len(rcvdIn.Seqs))
	check(s.RelayedPackets == uint64(len(rcvdOut.Seqs)), "insane relayed %d = morgana received %d", s.RelayedPackets, len(rcvdOut.Seqs))
	_, err = sh(borea, "insane", "link", "set", "insane0", "rx", "off")
	return err
}

// report prints the counts for one mode and insane's counters, and checks
// that insane counted exactly what morgana saw.
func report(sent vmnet.Sent, rcvd vmnet.Received) error {
	n := len(sent.At)
	fmt.Printf("  sent %d, relayed (received at morgana) %d, dropped %d\n", n, len(rcvd.Seqs), n-len(rcvd.Seqs))
	out, err := sh(borea, "insane", "-s", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)
	js, err := exec.Command("ip", "netns", "exec", borea, "insane", "-j", "-s", "link", "show", "insane0").Output()
	if err != nil {
		return fmt.Errorf("insane -j -s link show insane0: %v", err)
	}
	var devs []counters
	if err := json.Unmarshal(js, &devs); err != nil {
		return fmt.Errorf("insane -j -s link show insane0: %v", err)
	}
	if len(devs) != 1 || devs[0].Stats == nil {
		return errors.New("insane -j -s link show insane0: no counters for insane0")
	}
	s := devs[0].Stats
	check(sent.Errors == 0, "every send was accepted by the kernel (%d refused)", sent.Errors)
	check(rcvd.Duplicates == 0, "no duplicates at morgana (%d)", rcvd.Duplicates)
	check(s.RelayedPackets == uint64(len(rcvd.Seqs)), "insane relayed %d = morgana received %d", s.RelayedPackets, len(rcvd.Seqs))
	check(s.DropPolicy == uint64(n-len(rcvd.Seqs)), "insane dropped by policy %d = sent - received %d", s.DropPolicy, n-len(rcvd.Seqs))
	return nil
}

func passMode() error {
	fmt.Println("\n== pass mode: relay everything")
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass", "reset-stats"); err != nil {
		return err
	}
	const n = 500
	sent, rcvd, err := flow(n, 500*time.Microsecond)
	if err != nil {
		return err
	}
	if err := report(sent, rcvd); err != nil {
		return err
	}
	check(len(rcvd.Seqs) == n, "all %d datagrams arrived", n)
	return nil
}

func percentMode() error {
	fmt.Println("\n== percent mode: relay 80%, drop 20% (pseudo-random)")
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "percent", "80", "reset-stats"); err != nil {
		return err
	}
	const n, p = 2000, 0.8
	sent, rcvd, err := flow(n, 250*time.Microsecond)
	if err != nil {
		return err
	}
	if err := report(sent, rcvd); err != nil {
		return err
	}
	mean, sigma := n*p, math.Sqrt(n*p*(1-p))
	got := float64(len(rcvd.Seqs))
	check(math.Abs(got-mean) <= 4*sigma, "relayed %.0f is within 4 sigma of %.0f (%.0f..%.0f)", got, mean, mean-4*sigma, mean+4*sigma)
	return nil
}

// seedRelays is the uapi's seeded decision for the k-th packet since the
// policy was set (insane.h, "Percent decisions").
func seedRelays(seed, k uint64, percentUnits uint32) bool {
	const percentMax = 100 * 1000000
	x := seed + (k+1)*0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return (x>>32)*percentMax < uint64(percentUnits)<<32
}

func seedMode() error {
	fmt.Println("\n== percent mode with a seed: the same drops every time")
	const n, seed = 400, 2000
	var runs [2]vmnet.Received
	for i := range runs {
		if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "percent", "80", "seed", fmt.Sprint(seed), "reset-stats"); err != nil {
			return err
		}
		sent, rcvd, err := flow(n, 250*time.Microsecond)
		if err != nil {
			return err
		}
		if err := report(sent, rcvd); err != nil {
			return err
		}
		runs[i] = rcvd
	}
	same, predicted := true, true
	var pattern strings.Builder
	for k := uint64(0); k < n; k++ {
		if runs[0].Has(k) != runs[1].Has(k) {
			same = false
		}
		want := seedRelays(seed, k, 80*1000000)
		if runs[0].Has(k) != want {
			predicted = false
		}
		if k < 64 {
			if runs[0].Has(k) {
				pattern.WriteByte('#')
			} else {
				pattern.WriteByte('.')
			}
		}
	}
	fmt.Printf("  first 64 datagrams (# relayed, . dropped): %s\n", pattern.String())
	check(same, "both runs dropped exactly the same datagrams")
	check(predicted, "the drops are the ones the uapi formula predicts for seed %d", seed)
	return nil
}

func timeMode() error {
	fmt.Println("\n== time mode: relay for 50 ticks (0.5 s), drop for 100 ticks (1 s), repeating")
	start := time.Now()
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "time", "50", "100", "reset-stats"); err != nil {
		return err
	}
	set := time.Now()
	const interval = 5 * time.Millisecond
	const n = 900 // 4.5 s, three cycles
	sent, rcvd, err := flow(n, interval)
	if err != nil {
		return err
	}
	if err := report(sent, rcvd); err != nil {
		return err
	}

	// A timeline by send time: one row per 100 ms.
	const row = 100 * time.Millisecond
	first := sent.At[0]
	type bin struct{ relayed, dropped int }
	var bins []bin
	for k, at := range sent.At {
		i := int(at.Sub(first) / row)
		for len(bins) <= i {
			bins = append(bins, bin{})
		}
		if rcvd.Has(uint64(k)) {
			bins[i].relayed++
		} else {
			bins[i].dropped++
		}
	}
	fmt.Println("  time    relayed dropped  (# relayed, . dropped)")
	for i, b := range bins {
		fmt.Printf("  %4.1fs   %5d %7d   %s%s\n", float64(i)*row.Seconds(), b.relayed, b.dropped,
			strings.Repeat("#", b.relayed), strings.Repeat(".", b.dropped))
	}

	// The windows as the datagrams saw them: runs of relayed and dropped
	// datagrams, measured by send time (shown, not judged: a sender
	// stalled by a busy machine cuts them).
	type window struct {
		relayed bool
		d       time.Duration
	}
	var ws []window
	runStart := 0
	for k := 1; k <= n; k++ {
		if k == n || rcvd.Has(uint64(k)) != rcvd.Has(uint64(runStart)) {
			end := sent.At[k-1].Add(interval)
			ws = append(ws, window{rcvd.Has(uint64(runStart)), end.Sub(sent.At[runStart])})
			runStart = k
		}
	}
	var ons, offs []string
	if len(ws) > 2 {
		for _, w := range ws[1 : len(ws)-1] {
			if w.relayed {
				ons = append(ons, fmt.Sprintf("%.2fs", w.d.Seconds()))
			} else {
				offs = append(offs, fmt.Sprintf("%.2fs", w.d.Seconds()))
			}
		}
	}
	fmt.Printf("  whole ON windows by send time: %s; whole OFF windows: %s; relayed fraction %.2f (1/3 due)\n",
		strings.Join(ons, " "), strings.Join(offs, " "), float64(len(rcvd.Seqs))/n)

	// The verdict: each datagram whose decision, bracketed by the clocks
	// read around its send and around the set command, fell wholly inside
	// one window (ON [0, 0.5 s), OFF [0.5 s, 1.5 s) of each 1.5 s cycle).
	const on, cycle = 500 * time.Millisecond, 1500 * time.Millisecond
	var inOn, relayedOn, inOff, relayedOff int
	for k := range sent.At {
		lo, hi, ok := decided(sent, k, start, set)
		if !ok || lo < 0 || lo/cycle != hi/cycle {
			continue
		}
		plo, phi := lo%cycle, hi%cycle
		switch {
		case phi < on:
			inOn++
			if rcvd.Has(uint64(k)) {
				relayedOn++
			}
		case plo >= on:
			inOff++
			if rcvd.Has(uint64(k)) {
				relayedOff++
			}
		}
	}
	fmt.Printf("  the set command took %v; decided surely inside an ON window: %d, inside an OFF window: %d\n",
		set.Sub(start).Round(time.Millisecond), inOn, inOff)
	if inOn == 0 || inOff == 0 {
		cannotJudge("no datagram was surely inside an ON (%d) or an OFF (%d) window: the set command or the sender stalled", inOn, inOff)
		return nil
	}
	check(relayedOn == inOn, "every datagram sent inside an ON window was relayed (%d of %d)", relayedOn, inOn)
	check(relayedOff == 0, "every datagram sent inside an OFF window was dropped (%d of %d relayed)", relayedOff, inOff)
	return nil
}

// pattern draws datagrams 0..n-1: # relayed, . dropped.
func pattern(rcvd vmnet.Received, n int) string {
	var b strings.Builder
	for k := 0; k < n; k++ {
		if rcvd.Has(uint64(k)) {
			b.WriteByte('#')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// bursts returns the number of loss bursts among datagrams 0..n-1 and how
// many datagrams they lost.
func bursts(rcvd vmnet.Received, n int) (count, lost int) {
	for k := 0; k < n; k++ {
		if rcvd.Has(uint64(k)) {
			continue
		}
		lost++
		if k == 0 || rcvd.Has(uint64(k-1)) {
			count++
		}
	}
	return count, lost
}

func burstMode() error {
	fmt.Println("\n== burst mode: lose 10 %, in bursts of 8 datagrams on average, seeded")
	const n, seed = 4000, 11
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "burst", "90", "8", "seed", fmt.Sprint(seed), "reset-stats"); err != nil {
		return err
	}
	sent, rcvd, err := flow(n, 100*time.Microsecond)
	if err != nil {
		return err
	}
	if err := report(sent, rcvd); err != nil {
		return err
	}
	fmt.Printf("  datagrams 0-119: %s\n", pattern(rcvd, 120))
	count, lost := bursts(rcvd, n)
	mean := 0.0
	if count > 0 {
		mean = float64(lost) / float64(count)
	}
	fmt.Printf("  %d datagrams lost in %d bursts: mean burst length %.2f (configured 8)\n", lost, count, mean)
	// The bounds of the two-state chain (tests/vm/guest/loss_modes_test.go):
	// loss q = 0.1, r = 1/8, p = q / (8 (1 - q)), lambda = 1 - p - r.
	q, r := 0.1, 1.0/8
	lambda := 1 - q/(8*(1-q)) - r
	sigmaL := math.Sqrt(q * (1 - q) * (1 + lambda) / (1 - lambda) / n)
	check(math.Abs(float64(lost)/n-q) <= 4.5*sigmaL, "loss %.4f is within 4.5 sigma of 0.1 (± %.4f)", float64(lost)/n, 4.5*sigmaL)
	sigmaB := math.Sqrt(1-r) / r / math.Sqrt(float64(max(count, 1)))
	check(math.Abs(mean-8) <= 4.5*sigmaB, "mean burst length %.2f is within 4.5 sigma of 8 (± %.2f)", mean, 4.5*sigmaB)
	pr := genl.NewPredictor(seed)
	predicted := true
	for k := uint64(0); k < n; k++ {
		if pr.Relays(genl.Burst(90, 8, nil)) != rcvd.Has(k) {
			predicted = false
		}
	}
	check(predicted, "the drops are the ones genl.NewPredictor(%d) predicts", seed)
	return nil
}

func scheduleMode() error {
	fmt.Println("\n== schedule mode: 1.5 s pass, 1.5 s drop, then 50 % loss for good")
	// The steps start when the policy is set, not with the first datagram;
	// 1.5 s each, so that a set command slowed by a busy machine still
	// leaves datagrams surely inside every step.
	const step = 1500 * time.Millisecond
	start := time.Now()
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "schedule", "1500ms", "pass", "1500ms", "drop", "1500ms", "percent", "50", "once", "reset-stats"); err != nil {
		return err
	}
	// The policy was set somewhere between start and set.
	set := time.Now()
	out, err := sh(borea, "insane", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)
	const interval = 5 * time.Millisecond
	const n = 1000 // 5 s
	sent, rcvd, err := flow(n, interval)
	if err != nil {
		return err
	}
	if err := report(sent, rcvd); err != nil {
		return err
	}
	// Each datagram counts for a step only if its decision, bracketed by
	// the clocks read around its send and around the set command, lies
	// wholly inside the step.
	var tally [3]struct{ sent, relayed int }
	for k := range sent.At {
		lo, hi, ok := decided(sent, k, start, set)
		if !ok {
			continue
		}
		inside := func(from, to time.Duration) bool { return lo >= from && hi < to }
		i := -1
		switch {
		case inside(0, step):
			i = 0
		case inside(step, 2*step):
			i = 1
		case inside(2*step, time.Hour):
			i = 2
		}
		if i < 0 {
			continue
		}
		tally[i].sent++
		if rcvd.Has(uint64(k)) {
			tally[i].relayed++
		}
	}
	fmt.Printf("  the set command took %v\n", set.Sub(start).Round(time.Millisecond))
	for i, name := range []string{"pass", "drop", "percent 50"} {
		fmt.Printf("  step %d (%s): %d of %d relayed\n", i+1, name, tally[i].relayed, tally[i].sent)
	}
	judge := func(i int, what string, ok func() bool, format string, args ...any) {
		if tally[i].sent == 0 {
			cannotJudge("%s: no datagram was surely inside step %d (the set command or the sender stalled)", what, i+1)
			return
		}
		check(ok(), format, args...)
	}
	judge(0, "the pass step", func() bool { return tally[0].relayed == tally[0].sent },
		"the pass step relayed its datagrams (%d of %d)", tally[0].relayed, tally[0].sent)
	judge(1, "the drop step", func() bool { return tally[1].relayed == 0 },
		"the drop step relayed none (%d of %d)", tally[1].relayed, tally[1].sent)
	m := float64(tally[2].sent) / 2
	sd := math.Sqrt(float64(tally[2].sent) / 4)
	judge(2, "the last step", func() bool { return math.Abs(float64(tally[2].relayed)-m) <= 4.5*sd },
		"the last step, held, relayed %d of %d (50 %% ± 4.5 sigma)", tally[2].relayed, tally[2].sent)
	out, err = sh(borea, "insane", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)
	check(strings.Contains(out, "step 3 of 3: ") && strings.Contains(out, " percent 50, held for good"), "show says the last step holds for good")
	return nil
}

// A watcher runs a monitor command and keeps the lines that mention a
// device.
type watcher struct {
	first chan struct{} // closed at the first such line
	lines chan []string // the lines, once stopped
}

// watch runs a monitor command in ns until stop is closed and keeps the
// lines that mention dev, printing each as it comes, prefixed by who
// printed it.
func watch(ns, who, dev string, stop <-chan struct{}, args ...string) *watcher {
	w := &watcher{first: make(chan struct{}), lines: make(chan []string, 1)}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil || cmd.Start() != nil {
		w.lines <- nil
		return w
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	go func() {
		var got []string
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					w.lines <- got
					return
				}
				if strings.Contains(l, dev) {
					fmt.Printf("  %s| %s\n", who, l)
					if got == nil {
						close(w.first)
					}
					got = append(got, l)
				}
			case <-stop:
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				w.lines <- got
				return
			}
		}
	}()
	return w
}

func flapMode() error {
	fmt.Println("\n== link flaps: the carrier really goes off in each OFF window, and every edge is an event")
	// Both listeners start first, and are known to listen once each has
	// printed a change made for the purpose (the device's alias, its pass
	// policy set again).
	stop := make(chan struct{})
	ipmon := watch(borea, "ip monitor link", "insane0", stop, "ip", "monitor", "link")
	insmon := watch(borea, "insane monitor  ", "insane0", stop, "insane", "monitor")
	ready := func(w *watcher) bool {
		select {
		case <-w.first:
			return true
		default:
			return false
		}
	}
	for deadline := time.Now().Add(15 * time.Second); !(ready(ipmon) && ready(insmon)) && time.Now().Before(deadline); {
		if !ready(ipmon) {
			if _, err := sh(borea, "ip", "link", "set", "insane0", "alias", "the article's insane0"); err != nil {
				return err
			}
		}
		if !ready(insmon) {
			if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass"); err != nil {
				return err
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	listening := ready(ipmon) && ready(insmon)
	// Edges at 1, 2, 3 and 4 s after the policy's epoch (between start
	// and set) are judged: the watchers stop 4.5 s after set, which must
	// come before the fifth edge, 5 s after start.
	start := time.Now()
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "time", "1s", "1s", "carrier", "events"); err != nil {
		close(stop)
		return err
	}
	set := time.Now()
	time.Sleep(time.Until(set.Add(4500 * time.Millisecond)))
	stopped := time.Now()
	close(stop)
	links, edges := <-ipmon.lines, <-insmon.lines
	// The probes' lines come first, with the carrier on: no transition.
	var offs, ons, down, up int
	on := true
	for _, l := range links {
		off := strings.Contains(l, "NO-CARRIER")
		if off == on {
			if off {
				offs++
			} else {
				ons++
			}
			on = !off
		}
	}
	for _, l := range edges {
		switch {
		case strings.Contains(l, " edge ") && strings.Contains(l, " down "):
			down++
		case strings.Contains(l, " edge ") && strings.Contains(l, " up "):
			up++
		}
	}
	switch {
	case !listening:
		cannotJudge("the monitors did not print the changes made to test them within 15 s")
	case stopped.Sub(start) >= 5*time.Second:
		cannotJudge("the set command took %v and the watch ended %v after it began: the fifth edge may have been seen",
			set.Sub(start).Round(time.Millisecond), stopped.Sub(start).Round(time.Millisecond))
	default:
		check(offs == 2 && ons == 2, "ip monitor link saw the carrier go off %d times and come back %d times in 4.5 s (2 and 2 due)", offs, ons)
		check(down == 2 && up == 2, "insane monitor printed %d down edges and %d up edges (2 and 2 due)", down, up)
	}
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass"); err != nil {
		return err
	}
	return nil
}
