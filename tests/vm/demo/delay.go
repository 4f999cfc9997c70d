package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/tests/vm/internal/vmnet"
)

// stats returns insane0's counters, as `insane -j -s link show` gives them.
func stats() (*counters, error) {
	js, err := exec.Command("ip", "netns", "exec", borea, "insane", "-j", "-s", "link", "show", "insane0").Output()
	if err != nil {
		return nil, fmt.Errorf("insane -j -s link show insane0: %v", err)
	}
	var devs []counters
	if err := json.Unmarshal(js, &devs); err != nil {
		return nil, fmt.Errorf("insane -j -s link show insane0: %v", err)
	}
	if len(devs) != 1 || devs[0].Stats == nil {
		return nil, errors.New("insane -j -s link show insane0: no counters for insane0")
	}
	return &devs[0], nil
}

// ping pings morgana from borea, prints ping's summary and returns the
// quickest round trip in ms. busybox's ping times each echo with the
// monotonic clock read before it sends the request and after it reads the
// reply, so the round trip it prints contains the whole stay in insane0.
func ping() (float64, error) {
	out, err := sh(borea, "ping", "-c", "4", "-i", "0.2", "-q", morganaIP)
	if err != nil {
		return 0, err
	}
	var stat string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(l, "transmitted") || strings.HasPrefix(l, "round-trip") {
			fmt.Printf("  %s\n", l)
		}
		if strings.HasPrefix(l, "round-trip") {
			stat = l
		}
	}
	// round-trip min/avg/max = 50.412/51.020/52.183 ms
	i := strings.Index(stat, "= ")
	if i < 0 {
		return 0, fmt.Errorf("ping: no round-trip line in %q", out)
	}
	f := strings.Split(strings.Fields(stat[i+2:])[0], "/")
	min, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("ping: %q: %v", stat, err)
	}
	return min, nil
}

// judgeRTT checks the quickest round trip against the delays it crossed:
// never below them (exact: an echo never leaves before its delay), and
// close above them unless a busy machine slowed every echo.
func judgeRTT(min, due, base float64) {
	check(min >= due, "no round trip took less than %.0f ms (the quickest %.3f ms)", due, min)
	if bound := due + base + 20; min > bound {
		cannotJudge("the quickest round trip took %.3f ms, more than %.0f ms (the delay, the round trip without it and 20 ms): a busy machine slowed every echo", min, bound)
		return
	}
	fmt.Printf("  [ok  ] the round trip rose by %.1f ms (%.0f ms due)\n", min-base, due)
}

func delayMode() error {
	if err := rttMode(); err != nil {
		return err
	}
	if err := jitterMode(); err != nil {
		return err
	}
	return heldMode()
}

func rttMode() error {
	fmt.Println("\n== delay: 50 ms on the way to morgana, then 30 ms more on the way back")
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass"); err != nil {
		return err
	}
	base, err := ping()
	if err != nil {
		return err
	}
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass", "delay", "50ms"); err != nil {
		return err
	}
	min, err := ping()
	if err != nil {
		return err
	}
	fmt.Println("  the echo requests wait 50 ms in insane0; the replies come back on veth0, untouched")
	judgeRTT(min, 50, base)

	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass", "delay", "50ms", "rx", "mode", "pass", "delay", "30ms"); err != nil {
		return err
	}
	out, err := sh(borea, "insane", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)
	check(strings.Contains(out, "mode pass delay 50ms rx mode pass delay 30ms"), "show prints both delays")
	min, err = ping()
	if err != nil {
		return err
	}
	fmt.Println("  the replies, taken over by insane0's receive policy, wait 30 ms more")
	judgeRTT(min, 80, base)
	_, err = sh(borea, "insane", "link", "set", "insane0", "mode", "pass", "rx", "off")
	return err
}

// reordered counts the datagrams that arrived after one sent later.
func reordered(rcvd vmnet.Received) int {
	seqs := append([]uint64(nil), rcvd.Seqs...)
	sort.Slice(seqs, func(i, j int) bool {
		a, b := rcvd.At[seqs[i]], rcvd.At[seqs[j]]
		return a.Before(b) || a.Equal(b) && seqs[i] < seqs[j]
	})
	n := 0
	var highest uint64
	for i, s := range seqs {
		if i > 0 && s < highest {
			n++
		}
		highest = max(highest, s)
	}
	return n
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e6) }

func jitterMode() error {
	const (
		n        = 150
		interval = 2 * time.Millisecond
		seed     = 5
	)
	fmt.Printf("\n== jitter: delay 20ms jitter 10ms (10 to 30 ms), %d datagrams of one flow, %v apart\n", n, interval)
	fmt.Printf("   seed %d makes the delays reproducible: the Go client's Predictor computes each datagram's draw\n", seed)
	p := genl.Policy{Mode: genl.ModePass, Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}
	pr := genl.NewPredictor(seed)
	draws := make([]time.Duration, n)
	for k := range draws {
		draws[k] = pr.Delay(p)
	}
	var oneWay [2][]time.Duration
	for i, reorder := range []bool{false, true} {
		args := []string{"insane", "link", "set", "insane0", "mode", "pass", "delay", "20ms", "jitter", "10ms"}
		if reorder {
			args = append(args, "reorder")
		}
		if _, err := sh(borea, append(args, "seed", fmt.Sprint(seed), "reset-stats")...); err != nil {
			return err
		}
		sent, rcvd, err := flow(n, interval)
		if err != nil {
			return err
		}
		if len(rcvd.Seqs) != n || sent.Errors != 0 {
			check(false, "all %d datagrams arrived (%d did, %d sends refused)", n, len(rcvd.Seqs), sent.Errors)
			return nil
		}
		// Each datagram reached insane0 after its send began, so it
		// left no earlier than early[k]: its send plus its draw and,
		// keeping the order, no earlier than the one before it.
		var early time.Time
		before, waited := 0, 0
		var ds, over []time.Duration
		for k := 0; k < n; k++ {
			own := sent.At[k].Add(draws[k])
			if reorder || own.After(early) {
				early = own
			} else {
				waited++
			}
			at := rcvd.At[uint64(k)]
			if at.Before(early) {
				before++
			}
			ds = append(ds, at.Sub(sent.At[k]))
			over = append(over, at.Sub(early))
		}
		oneWay[i] = append([]time.Duration(nil), ds...)
		sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
		sort.Slice(over, func(a, b int) bool { return over[a] < over[b] })
		out := reordered(rcvd)
		fmt.Printf("  one-way delay min %s ms, median %s ms, max %s ms; arrived out of order: %d of %d\n",
			ms(ds[0]), ms(ds[n/2]), ms(ds[n-1]), out, n)
		if reorder {
			// Datagram j surely left before an earlier one i when
			// the latest it reached insane0 (before the next send
			// began) plus its draw comes before i's earliest.
			sure := 0
			for j := 1; j+1 < n; j++ {
				for k := 0; k < j; k++ {
					if sent.At[j+1].Add(draws[j]).Before(sent.At[k].Add(draws[k])) {
						sure++
						break
					}
				}
			}
			check(before == 0, "no datagram arrived before its send plus its draw")
			if sure == 0 {
				cannotJudge("the sender was so slow that no datagram surely overtook another")
			} else {
				check(out > 0, "reorder: %d datagrams overtook an earlier one (%d surely left before one sent earlier)", out, sure)
			}
		} else {
			fmt.Printf("  %d datagrams drew a shorter delay than the one before them allowed, and waited for it\n", waited)
			check(before == 0, "no datagram arrived before its send plus its draw, nor before the datagram sent before it")
			check(out == 0, "the flow kept its order: %d datagrams arrived out of order", out)
		}
		if over[n/2] > 5*time.Millisecond {
			cannotJudge("half the datagrams arrived more than %s ms after their departure was due: a busy machine", ms(over[n/2]))
		} else {
			fmt.Printf("  [ok  ] they arrived %s ms after their departure was due (median; max %s ms)\n", ms(over[n/2]), ms(over[n-1]))
		}
	}
	fmt.Println("  one-way delays (ms)")
	fmt.Println("  datagram            0     1     2     3     4     5     6     7     8     9")
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{{"drawn (seed 5) ", draws}, {"order kept     ", oneWay[0]}, {"reorder        ", oneWay[1]}} {
		fmt.Printf("  %s", row.name)
		for _, d := range row.ds[:10] {
			fmt.Printf(" %5s", ms(d))
		}
		fmt.Println()
	}
	return nil
}

func heldMode() error {
	const n, limit, size = 50, 20, 20 + 8 + uint64(vmnet.MinSize) // IPv4 and UDP headers, the payload
	fmt.Printf("\n== held packets: delay 1s limit %d, %d datagrams sent at once from CPU 0\n", limit, n)
	if _, err := sh(borea, "insane", "link", "set", "insane0", "mode", "pass", "delay", "1s", "limit", fmt.Sprint(limit), "reset-stats"); err != nil {
		return err
	}
	run++
	addr := fmt.Sprintf("%s:%d", morganaIP, port)
	r, err := vmnet.Listen(morgana, addr, run)
	if err != nil {
		return err
	}
	sent, err := vmnet.Send(borea, addr, vmnet.SendOptions{Count: n, Run: run, Pin: true, CPU: 0})
	if err != nil {
		r.Close()
		return err
	}
	out, err := sh(borea, "insane", "-s", "link", "show", "insane0")
	if err != nil {
		r.Close()
		return err
	}
	fmt.Print(out)
	held, err := stats()
	// Until the first datagram's second is up, nothing has left.
	judged := time.Now().Before(sent.At[0].Add(time.Second))
	if err != nil {
		r.Close()
		return err
	}
	r.Wait(limit, 1500*time.Millisecond, 10*time.Second)
	rcvd := r.Close()
	out, err = sh(borea, "insane", "-s", "link", "show", "insane0")
	if err != nil {
		return err
	}
	fmt.Print(out)
	after, err := stats()
	if err != nil {
		return err
	}
	s, a := held.Stats, after.Stats
	var quickest time.Duration
	for i, seq := range rcvd.Seqs {
		if d := rcvd.At[seq].Sub(sent.At[seq]); i == 0 || d < quickest {
			quickest = d
		}
	}
	fmt.Printf("  morgana received %d datagrams, the quickest %s ms after it was sent\n", len(rcvd.Seqs), ms(quickest))
	if !judged {
		cannotJudge("the sends and the show took longer than the delay: some datagrams may have left already")
	} else {
		check(s.HeldPackets == limit && s.HeldBytes == limit*size, "while held: %d packets, %d bytes held (%d, %d due)", s.HeldPackets, s.HeldBytes, limit, limit*size)
		check(s.DropQueueFull == n-limit && s.RelayedPackets == 0, "while held: %d dropped queue-full, %d relayed (%d, 0 due)", s.DropQueueFull, s.RelayedPackets, n-limit)
	}
	first := len(rcvd.Seqs) == limit && rcvd.Seqs[0] == 0 && rcvd.Seqs[limit-1] == limit-1
	check(first && sent.Errors == 0, "morgana received the first %d datagrams, 0 to %d", limit, limit-1)
	check(quickest >= time.Second, "none arrived before its second was up")
	check(a.HeldPackets == 0 && a.RelayedPackets == limit && a.DropQueueFull == n-limit,
		"then: held %d, relayed %d, queue-full %d (0, %d, %d due)", a.HeldPackets, a.RelayedPackets, a.DropQueueFull, limit, n-limit)
	_, err = sh(borea, "insane", "link", "set", "insane0", "mode", "pass")
	return err
}
