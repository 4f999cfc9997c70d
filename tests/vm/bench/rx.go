package main

// The receive phase (issue 15): the cost of insane's receive direction on
// packets received by a lower, in guest instructions under icount.
//
//	pktgen (netif_receive) -> rl0 (dummy, 10.3.0.1/24), from 10.3.0.2
//	  [-> ri0, an insane device on rl0, when its receive policy takes it]
//	  -> local delivery to a UDP socket that is never read
//
// Three cases: (ra) rl0 alone; (ro) an insane device ri0 on rl0 with the
// route back to 10.3.0.2 through ri0 but its receive policy off, which
// must cost nothing (no hook is installed); (rp) the same with receive
// pass, which pays for the rx_handler, the reverse route lookup, the second
// round of the receive loop on ri0 and the decision. The socket's buffer
// fills at once, so every case ends in the same UDP drop; ICMP is never
// sent. pktgen's netif_receive mode hands the stack a shared skb, which
// the receive hook must copy (skb_share_check()) before it changes its
// device: (rp) includes that clone, which a driver's unshared skb does not
// need.

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

const (
	rxLower   = "rl0"
	rxInsane  = "ri0"
	rxLocal   = "10.3.0.1"
	rxSource  = "10.3.0.2"
	rxPgCount = 0 // run for a duration
)

type rxRec struct {
	Case      string  `json:"case"`
	Rep       int     `json:"rep"`
	Sent      uint64  `json:"sent"`
	PPS       float64 `json:"pps"`
	Delivered uint64  `json:"delivered"` // taken over and passed up by ri0
}

type rxCase struct {
	key, name string
	setup     func(c *genl.Client) error
}

func setupRx() (*net.UDPConn, error) {
	if _, err := os.Stat("/sys/class/net/" + rxInsane); err == nil {
		if _, err := run("ip", "link", "del", rxInsane); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat("/sys/class/net/" + rxLower); err == nil {
		if _, err := run("ip", "link", "del", rxLower); err != nil {
			return nil, err
		}
	}
	if err := runAll(
		[]string{"ip", "link", "add", rxLower, "type", "dummy"},
		[]string{"ip", "addr", "add", rxLocal + "/24", "dev", rxLower},
		[]string{"ip", "link", "set", rxLower, "up"},
	); err != nil {
		return nil, err
	}
	if err := sysctl("net.ipv4.conf."+rxLower+".rp_filter", "0"); err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(rxLocal), Port: 9})
	if err != nil {
		return nil, err
	}
	if err := conn.SetReadBuffer(4096); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func rxCases() []rxCase {
	addInsane := func(c *genl.Client, rx *genl.Policy) error {
		if _, err := os.Stat("/sys/class/net/" + rxInsane); err == nil {
			if _, err := run("ip", "link", "del", rxInsane); err != nil {
				return err
			}
		}
		if err := c.AddLinkRx(rxInsane, rxLower, nil, rx); err != nil {
			return err
		}
		if err := sysctl("net.ipv4.conf."+rxInsane+".rp_filter", "0"); err != nil {
			return err
		}
		return runAll(
			[]string{"ip", "link", "set", rxInsane, "up"},
			[]string{"ip", "route", "replace", rxSource + "/32", "dev", rxInsane},
		)
	}
	pass := genl.Pass()
	return []rxCase{
		{"ra", "lower alone", func(*genl.Client) error {
			if _, err := os.Stat("/sys/class/net/" + rxInsane); err == nil {
				_, err := run("ip", "link", "del", rxInsane)
				return err
			}
			return nil
		}},
		{"ro", "insane, receive off", func(c *genl.Client) error { return addInsane(c, nil) }},
		{"rp", "insane, receive pass", func(c *genl.Client) error { return addInsane(c, &pass) }},
	}
}

// rxPktgen puts rl0 alone on kpktgend_0, injecting as received from
// 10.3.0.2.
func rxPktgen() error {
	for i := range inDevs {
		th := fmt.Sprintf("kpktgend_%d", i)
		if _, err := os.Stat(pgDir + th); err != nil {
			continue
		}
		if err := pgWrite(th, "rem_device_all"); err != nil {
			return err
		}
	}
	if err := pgWrite("kpktgend_0", "add_device "+rxLower); err != nil {
		return err
	}
	mac, err := os.ReadFile("/sys/class/net/" + rxLower + "/address")
	if err != nil {
		return err
	}
	for _, c := range []string{
		"xmit_mode netif_receive",
		fmt.Sprintf("count %d", rxPgCount),
		"pkt_size 64",
		"delay 0",
		"burst 1",
		"dst_mac " + strings.TrimSpace(string(mac)),
		"src_min " + rxSource,
		"src_max " + rxSource,
		"dst " + rxLocal,
		"udp_src_min 9",
		"udp_src_max 9",
		"udp_dst_min 9",
		"udp_dst_max 9",
	} {
		if err := pgWrite(rxLower, c); err != nil {
			return err
		}
	}
	return nil
}

// rxDelivered is what ri0 received (took over and passed up), 0 without it.
func rxDelivered() (uint64, error) {
	if _, err := os.Stat("/sys/class/net/" + rxInsane); err != nil {
		return 0, nil
	}
	return readUint("/sys/class/net/" + rxInsane + "/statistics/rx_packets")
}

// receive runs every receive case reps times, interleaved.
func receive(c *genl.Client, reps int, dur time.Duration) ([]rxRec, error) {
	conn, err := setupRx()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	fmt.Printf("receive: %d rounds of %d cases, %s each, interleaved ...\n", reps, len(rxCases()), dur)
	var out []rxRec
	for rep := 0; rep < reps; rep++ {
		for _, rc := range rxCases() {
			if err := rc.setup(c); err != nil {
				return nil, fmt.Errorf("receive case %s: %v", rc.key, err)
			}
			if err := rxPktgen(); err != nil {
				return nil, err
			}
			before, err := rxDelivered()
			if err != nil {
				return nil, err
			}
			sent, pps, err := pktgen{}.runDevs([]string{rxLower}, dur)
			if err != nil {
				return nil, fmt.Errorf("receive case %s: %v", rc.key, err)
			}
			after, err := rxDelivered()
			if err != nil {
				return nil, err
			}
			out = append(out, rxRec{Case: rc.key, Rep: rep, Sent: sent, PPS: pps, Delivered: after - before})
		}
	}
	// The forwarding phases' devices go back on their threads.
	if err := pgWrite("kpktgend_0", "rem_device_all"); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/sys/class/net/" + rxInsane); err == nil {
		if _, err := run("ip", "link", "del", rxInsane); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func printReceive(rs []rxRec, icount bool) {
	unit := "guest ns per packet"
	if icount {
		unit = "instructions per packet"
	}
	byCase := map[string][]rxRec{}
	for _, r := range rs {
		byCase[r.Case] = append(byCase[r.Case], r)
	}
	base := map[int]float64{}
	for _, r := range byCase["ra"] {
		base[r.Rep] = r.PPS
	}
	fmt.Printf("\n### Receive on the lower, pktgen netif_receive, 1 CPU (median [min–max] over rounds)\n\n")
	fmt.Printf("| case | kpps | %s | / (ra) lower alone, same round | taken over by ri0 |\n", unit)
	fmt.Println("|---|---|---|---|---|")
	for _, rc := range rxCases() {
		var pps, ns, ratio, taken []float64
		for _, r := range byCase[rc.key] {
			pps = append(pps, r.PPS)
			ns = append(ns, 1e9/r.PPS)
			if b := base[r.Rep]; b > 0 {
				ratio = append(ratio, r.PPS/b)
			}
			if r.Sent > 0 {
				taken = append(taken, float64(r.Delivered)/float64(r.Sent))
			}
		}
		fmt.Printf("| (%s) %s | %s | %s | %s | %s |\n", rc.key, rc.name,
			medRange(pps, 1e-3, 1), medRange(ns, 1, 0), medRange(ratio, 1, 3), medRange(taken, 100, 1)+" %")
	}
}

// medRange formats the median and the range of v, scaled, with prec
// decimals.
func medRange(v []float64, scale float64, prec int) string {
	if len(v) == 0 {
		return "-"
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	f := func(x float64) string { return fmt.Sprintf("%.*f", prec, x*scale) }
	return fmt.Sprintf("%s [%s–%s]", f(s[len(s)/2]), f(s[0]), f(s[len(s)-1]))
}
