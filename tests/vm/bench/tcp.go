package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"golang.org/x/sys/unix"
)

// The TCP bulk phase: one TCP stream from the guest's own namespace to a
// sink in namespace tcpSinkNS over a veth pair, either straight out of the
// veth (the lower alone) or through an insane device stacked on it.
const (
	tcpSinkNS = "sink"
	tcpLower  = "tv0"
	tcpPeer   = "tv1"
	tcpIns    = "tins0"
	tcpDstIP  = "10.3.0.2"
	tcpPort   = 5001
)

type tcpCase struct {
	key, name string
	policy    *genl.Policy // nil: the lower alone
}

func tcpCases() []tcpCase {
	pass, p999 := genl.Pass(), genl.Percent(99.9, nil)
	return []tcpCase{
		{"a", "lower alone (veth)", nil},
		{"b", "insane pass", &pass},
		{"p", "insane percent 99.9", &p999},
	}
}

// tcpRec is one run of one case.
type tcpRec struct {
	Key   string  `json:"key"`
	Round int     `json:"round"`
	Bytes uint64  `json:"bytes"`
	BPS   float64 `json:"bytes_per_second"`
	// Wire packets insane relayed and dropped, and the packets (GSO
	// packets count once) the veth lower transmitted, during the run.
	Relayed uint64 `json:"relayed"`
	Dropped uint64 `json:"dropped"`
	LowerTx uint64 `json:"lower_tx"`
}

func setupTCP() error {
	if _, err := os.Stat("/var/run/netns/" + tcpSinkNS); err == nil {
		if _, err := run("ip", "netns", "del", tcpSinkNS); err != nil {
			return err
		}
	}
	for _, d := range []string{tcpIns, tcpLower} {
		if _, err := os.Stat("/sys/class/net/" + d); err == nil {
			if _, err := run("ip", "link", "del", d); err != nil {
				return err
			}
		}
	}
	return runAll(
		[]string{"ip", "netns", "add", tcpSinkNS},
		[]string{"ip", "link", "add", tcpLower, "type", "veth", "peer", "name", tcpPeer, "netns", tcpSinkNS},
		[]string{"ip", "addr", "add", "10.3.0.1/24", "dev", tcpLower},
		[]string{"ip", "link", "set", tcpLower, "up"},
		[]string{"ip", "-n", tcpSinkNS, "addr", "add", tcpDstIP + "/24", "dev", tcpPeer},
		[]string{"ip", "-n", tcpSinkNS, "link", "set", tcpPeer, "up"},
		[]string{"ip", "-n", tcpSinkNS, "link", "set", "lo", "up"},
		[]string{"ip", "link", "add", tcpIns, "link", tcpLower, "type", "insane"},
		[]string{"ip", "link", "set", tcpIns, "up"},
	)
}

// tcpSink listens in the sink namespace and counts every byte it reads,
// from any number of connections, into *n.
func tcpSink(n *atomic.Uint64) error {
	ready := make(chan error, 1)
	go func() {
		// The thread stays in the sink namespace and dies with the
		// goroutine, never to run other goroutines.
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + tcpSinkNS)
		if err != nil {
			ready <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			ready <- err
			return
		}
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			err = unix.Bind(s, &unix.SockaddrInet4{Port: tcpPort, Addr: [4]byte{10, 3, 0, 2}})
		}
		if err == nil {
			err = unix.Listen(s, 8)
		}
		ready <- err
		if err != nil {
			return
		}
		for {
			c, _, err := unix.Accept(s)
			if err != nil {
				return
			}
			go func(c int) {
				defer unix.Close(c)
				buf := make([]byte, 256<<10)
				for {
					k, err := unix.Read(c, buf)
					if k <= 0 || err != nil {
						return
					}
					n.Add(uint64(k))
				}
			}(c)
		}
	}()
	return <-ready
}

func tcpViaInsane(c *genl.Client, p *genl.Policy) error {
	if p == nil {
		out, err := run("ip", "route", "show", tcpDstIP+"/32")
		if err != nil || out == "" {
			return err
		}
		_, err = run("ip", "route", "del", tcpDstIP+"/32")
		return err
	}
	if err := c.SetPolicy(tcpIns, *p); err != nil {
		return err
	}
	// The source stays the veth's address, which the sink routes back.
	_, err := run("ip", "route", "replace", tcpDstIP+"/32", "dev", tcpIns, "src", "10.3.0.1")
	return err
}

func tcpCounters(c *genl.Client) (relayed, dropped, lowerTx uint64, err error) {
	d, err := c.Device(tcpIns)
	if err != nil {
		return 0, 0, 0, err
	}
	lowerTx, err = readUint("/sys/class/net/" + tcpLower + "/statistics/tx_packets")
	return d.Stats.RelayedPackets, d.Stats.Dropped(), lowerTx, err
}

// tcpRun sends on one new connection for warm-up + dur of guest time and
// returns the bytes the sink received during dur.
func tcpRun(c *genl.Client, tc tcpCase, round int, recv *atomic.Uint64, dur time.Duration) (tcpRec, error) {
	rec := tcpRec{Key: tc.key, Round: round}
	if err := tcpViaInsane(c, tc.policy); err != nil {
		return rec, err
	}
	defer tcpViaInsane(c, nil)
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return rec, err
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	if err := unix.Connect(s, &unix.SockaddrInet4{Port: tcpPort, Addr: [4]byte{10, 3, 0, 2}}); err != nil {
		unix.Close(s)
		return rec, fmt.Errorf("connect %s:%d: %w", tcpDstIP, tcpPort, err)
	}
	go func() {
		buf := make([]byte, 64<<10)
		for !stop.Load() {
			if _, err := unix.Write(s, buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(100 * time.Millisecond) // slow start, out of the count
	r0, d0, l0, err := tcpCounters(c)
	if err != nil {
		stop.Store(true)
		unix.Close(s)
		return rec, err
	}
	b0, t0 := recv.Load(), mono()
	time.Sleep(dur)
	b1, t1 := recv.Load(), mono()
	r1, d1, l1, err := tcpCounters(c)
	stop.Store(true)
	unix.Shutdown(s, unix.SHUT_RDWR)
	werr := <-done
	unix.Close(s)
	if err != nil {
		return rec, err
	}
	if werr != nil && werr != unix.EPIPE && werr != unix.ECONNRESET {
		return rec, werr
	}
	rec.Bytes = b1 - b0
	rec.BPS = float64(rec.Bytes) / (float64(t1-t0) / 1e9)
	rec.Relayed, rec.Dropped, rec.LowerTx = r1-r0, d1-d0, l1-l0
	return rec, nil
}

func tcpBulk(c *genl.Client, reps int, dur time.Duration) ([]tcpRec, error) {
	if err := setupTCP(); err != nil {
		return nil, err
	}
	var recv atomic.Uint64
	if err := tcpSink(&recv); err != nil {
		return nil, fmt.Errorf("tcp sink: %w", err)
	}
	var recs []tcpRec
	for round := 0; round < reps; round++ {
		for _, tc := range tcpCases() {
			r, err := tcpRun(c, tc, round, &recv, dur)
			if err != nil {
				return nil, fmt.Errorf("tcp (%s) %s: %w", tc.key, tc.name, err)
			}
			recs = append(recs, r)
		}
	}
	return recs, nil
}

func medianMinMax(v []float64) (med, lo, hi float64) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2], s[0], s[len(s)-1]
}

func printTCP(recs []tcpRec, reps int, dur time.Duration) {
	fmt.Printf("#### TCP bulk, one stream over a veth lower to a sink namespace (%d rounds x %s of guest time; median [min–max])\n\n", reps, dur)
	fmt.Println("| case | MB/s of guest time | / (a) lower alone, same round | wire packets relayed per lower transmit | dropped |")
	fmt.Println("|---|---|---|---|---|")
	base := map[int]float64{}
	for _, r := range recs {
		if r.Key == "a" {
			base[r.Round] = r.BPS
		}
	}
	for _, tc := range tcpCases() {
		var rate, ratio, per, drop []float64
		for _, r := range recs {
			if r.Key != tc.key {
				continue
			}
			rate = append(rate, r.BPS/1e6)
			ratio = append(ratio, r.BPS/base[r.Round])
			if r.LowerTx > 0 {
				per = append(per, float64(r.Relayed)/float64(r.LowerTx))
			}
			drop = append(drop, float64(r.Dropped))
		}
		if len(rate) == 0 {
			continue
		}
		m, lo, hi := medianMinMax(rate)
		rm, rlo, rhi := medianMinMax(ratio)
		perS, dropS := "–", "–"
		if tc.policy != nil && len(per) > 0 {
			pm, plo, phi := medianMinMax(per)
			perS = fmt.Sprintf("%.2f [%.2f–%.2f]", pm, plo, phi)
			dm, dlo, dhi := medianMinMax(drop)
			dropS = fmt.Sprintf("%.0f [%.0f–%.0f]", dm, dlo, dhi)
		}
		fmt.Printf("| (%s) %s | %.1f [%.1f–%.1f] | %.3f [%.3f–%.3f] | %s | %s |\n", tc.key, tc.name, m, lo, hi, rm, rlo, rhi, perS, dropS)
	}
	fmt.Println()
	fmt.Println("\"wire packets relayed per lower transmit\" is insane's relayed wire packets over the veth's transmitted")
	fmt.Println("packets (a GSO packet counts once there): above 1 when GSO packets pass whole, 1 when each segment is decided.")
	fmt.Println()
}
