package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

// The bench network, all in the VM's initial network namespace:
//
//	pktgen (netif_receive) -> in0 / in1 (dummy, 10.1.x.1/24)
//	  -> IPv4 forwarding -> 10.2.0.2 -> [insane0 ->] low0 (dummy, 10.2.0.1/24)
//
// pktgen injects each packet as if in0 (in1 for the second CPU) had
// received it, so every packet crosses the IP stack: the forwarding route
// lookup, netfilter, the egress qdisc and tc hooks of the device it leaves
// by. A /32 route sends 10.2.0.2 through insane0 for the insane cases;
// without it the /24 prefix route sends it straight out of low0. insane's
// own route lookup (oif low0) also finds that prefix route, a cached
// route, so the relay does not allocate a dst per packet.
const (
	lower   = "low0"
	insane  = "insane0"
	dstIP   = "10.2.0.2"
	lowerIP = "10.2.0.1/24"
)

// inDevs are the devices pktgen injects on, one per sending CPU.
var inDevs = []struct{ name, addr, src string }{
	{"in0", "10.1.0.1/24", "10.1.0.2"},
	{"in1", "10.1.1.1/24", "10.1.1.2"},
}

// run runs a command and returns its combined output.
func run(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// runIn runs a command with stdin.
func runIn(stdin string, args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func runAll(cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := run(c...); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path, s string) error {
	return os.WriteFile(path, []byte(s), 0o644)
}

func sysctl(key, value string) error {
	return writeFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), value)
}

// setupNet builds the bench network and loads what the cases need.
func setupNet() error {
	for _, m := range []string{"dummy", "pktgen", "insane", "sch_netem", "act_gact", "cls_matchall", "sch_ingress", "macvlan", "ipvlan"} {
		if _, err := run("modprobe", m); err != nil {
			return err
		}
	}
	// No IPv6 chatter on the counted devices.
	if err := sysctl("net.ipv6.conf.all.disable_ipv6", "1"); err != nil {
		return err
	}
	if err := sysctl("net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
		return err
	}
	// A second run in the same guest starts afresh.
	for _, d := range []string{insane, lower, inDevs[0].name, inDevs[1].name} {
		if _, err := os.Stat("/sys/class/net/" + d); err == nil {
			if _, err := run("ip", "link", "del", d); err != nil {
				return err
			}
		}
	}
	cmds := [][]string{
		{"ip", "link", "add", lower, "type", "dummy"},
		{"ip", "addr", "add", lowerIP, "dev", lower},
		{"ip", "link", "set", lower, "up"},
		{"ip", "link", "add", insane, "link", lower, "type", "insane"},
		{"ip", "link", "set", insane, "up"},
	}
	for _, d := range inDevs {
		cmds = append(cmds,
			[]string{"ip", "link", "add", d.name, "type", "dummy"},
			[]string{"ip", "addr", "add", d.addr, "dev", d.name},
			[]string{"ip", "link", "set", d.name, "up"})
	}
	if err := runAll(cmds...); err != nil {
		return err
	}
	for _, k := range []string{"net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"} {
		v := "0"
		if k == "net.ipv4.ip_forward" {
			v = "1"
		}
		if err := sysctl(k, v); err != nil {
			return err
		}
	}
	for _, d := range inDevs {
		if err := sysctl("net.ipv4.conf."+d.name+".rp_filter", "0"); err != nil {
			return err
		}
	}
	return nil
}

// viaInsane routes 10.2.0.2 through insane0 (on) or straight out of low0.
func viaInsane(on bool) error {
	if on {
		_, err := run("ip", "route", "replace", dstIP+"/32", "dev", insane)
		return err
	}
	out, err := run("ip", "route", "show", dstIP+"/32")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "" {
		return nil
	}
	_, err = run("ip", "route", "del", dstIP+"/32")
	return err
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// lowerTx is the number of packets low0 has sent.
func lowerTx() (uint64, error) {
	return readUint("/sys/class/net/" + lower + "/statistics/tx_packets")
}

// pktgen drives the kernel packet generator through /proc/net/pktgen.
type pktgen struct{}

const pgDir = "/proc/net/pktgen/"

func pgWrite(file, cmd string) error {
	// pgctrl cuts the last byte of what it is given.
	if err := writeFile(pgDir+file, cmd+"\n"); err != nil {
		// The error of a refused command is in the file's Result line.
		res, _ := os.ReadFile(pgDir + file)
		return fmt.Errorf("pktgen %s %q: %v (%s)", file, cmd, err, lastResult(string(res)))
	}
	return nil
}

func lastResult(s string) string {
	if i := strings.LastIndex(s, "Result:"); i >= 0 {
		return strings.TrimSpace(s[i:])
	}
	return ""
}

// configure puts device i (in0 or in1) on thread kpktgend_i, or takes
// every device off the threads at or beyond ncpu.
func (pktgen) configure(ncpu int, count uint64) error {
	for i := range inDevs {
		th := fmt.Sprintf("kpktgend_%d", i)
		// One thread per CPU: a 1-vCPU guest (icount) has no second.
		if _, err := os.Stat(pgDir + th); err != nil && i >= ncpu {
			continue
		}
		if err := pgWrite(th, "rem_device_all"); err != nil {
			return err
		}
	}
	for i := 0; i < ncpu; i++ {
		d := inDevs[i]
		th := fmt.Sprintf("kpktgend_%d", i)
		if err := pgWrite(th, "add_device "+d.name); err != nil {
			return err
		}
		mac, err := os.ReadFile("/sys/class/net/" + d.name + "/address")
		if err != nil {
			return err
		}
		for _, c := range []string{
			"xmit_mode netif_receive",
			fmt.Sprintf("count %d", count),
			"pkt_size 64",
			"delay 0",
			"burst 1",
			"dst_mac " + strings.TrimSpace(string(mac)),
			"src_min " + d.src,
			"src_max " + d.src,
			"dst " + dstIP,
			"udp_src_min 9",
			"udp_src_max 9",
			"udp_dst_min 9",
			"udp_dst_max 9",
		} {
			if err := pgWrite(d.name, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// pgResult is what one pktgen device reports after a run.
type pgResult struct {
	sent   uint64
	errors uint64
	usec   uint64
}

var (
	reSofar  = regexp.MustCompile(`pkts-sofar: (\d+)\s+errors: (\d+)`)
	reResult = regexp.MustCompile(`Result: OK: (\d+)\(`)
)

func (pktgen) result(dev string) (pgResult, error) {
	b, err := os.ReadFile(pgDir + dev)
	if err != nil {
		return pgResult{}, err
	}
	var r pgResult
	m := reSofar.FindSubmatch(b)
	if m == nil {
		return r, fmt.Errorf("pktgen %s: no pkts-sofar in %q", dev, b)
	}
	r.sent, _ = strconv.ParseUint(string(m[1]), 10, 64)
	r.errors, _ = strconv.ParseUint(string(m[2]), 10, 64)
	m = reResult.FindSubmatch(b)
	if m == nil {
		return r, fmt.Errorf("pktgen %s: no result in %q", dev, lastResult(string(b)))
	}
	r.usec, _ = strconv.ParseUint(string(m[1]), 10, 64)
	return r, nil
}

// finished reports whether every device of devs has the result of a run:
// configure leaves another result line behind.
func (pktgen) finished(devs []string) bool {
	for _, d := range devs {
		b, err := os.ReadFile(pgDir + d)
		if err != nil || !reResult.Match(b) {
			return false
		}
	}
	return true
}

// run sends on ncpu devices, for d if d > 0 (count 0 configured) or until
// the configured count is sent. It returns the packets sent and the packets
// per second, summed over the devices.
//
// Writing start to pgctrl waits for the threads to finish, but only if they
// took up the order within 125 ms; in a starved guest they may not have, so
// the end of a run is told by the devices' result lines.
func (p pktgen) run(ncpu int, d time.Duration) (sent uint64, pps float64, err error) {
	var devs []string
	for i := 0; i < ncpu; i++ {
		devs = append(devs, inDevs[i].name)
	}
	return p.runDevs(devs, d)
}

// runDevs is run on the pktgen devices devs, each on its own thread.
func (p pktgen) runDevs(devs []string, d time.Duration) (sent uint64, pps float64, err error) {
	done := make(chan error, 1)
	go func() { done <- pgWrite("pgctrl", "start") }()
	if d > 0 {
		select {
		case err := <-done:
			if err != nil {
				return 0, 0, err
			}
			time.Sleep(d)
		case <-time.After(d):
		}
		if err := pgWrite("pgctrl", "stop"); err != nil {
			return 0, 0, err
		}
	}
	if err := <-done; err != nil {
		return 0, 0, err
	}
	for i := 0; !p.finished(devs); i++ {
		if i == 1200 {
			return 0, 0, errors.New("pktgen: no result after 2 minutes")
		}
		// A stop that came before a thread took up the start is lost.
		if d > 0 && i%50 == 49 {
			if err := pgWrite("pgctrl", "stop"); err != nil {
				return 0, 0, err
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, dev := range devs {
		r, err := p.result(dev)
		if err != nil {
			return 0, 0, err
		}
		if r.usec == 0 {
			return 0, 0, fmt.Errorf("pktgen %s: ran for 0 us", dev)
		}
		sent += r.sent
		pps += float64(r.sent) / (float64(r.usec) / 1e6)
	}
	return sent, pps, nil
}

// A dropper is one way of dropping (or relaying) the forwarded packets.
type dropper struct {
	key, name string
	// loss is the configured drop fraction; negative when it is not a
	// fixed fraction of packets.
	loss  float64
	setup func(c *genl.Client) error
	// dropped reads the tool's own drop counter (cumulative since setup).
	dropped  func(c *genl.Client) (uint64, error)
	teardown func(c *genl.Client) error
}

// Time mode in the throughput runs: 10 ms on, 10 ms off.
const timeOn, timeOff = 10 * time.Millisecond, 10 * time.Millisecond

var reTcDropped = regexp.MustCompile(`\(dropped (\d+),`)
var reNftCounter = regexp.MustCompile(`counter packets (\d+)`)

func firstUint(re *regexp.Regexp, s string) (uint64, error) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("no %s in %q", re, s)
	}
	return strconv.ParseUint(m[1], 10, 64)
}

func insaneDrops(c *genl.Client) (uint64, error) {
	d, err := c.Device(insane)
	if err != nil {
		return 0, err
	}
	return d.Stats.Dropped(), nil
}

func insaneCase(key, name string, loss float64, p genl.Policy) dropper {
	return dropper{
		key: key, name: name, loss: loss,
		setup: func(c *genl.Client) error {
			if err := c.SetPolicy(insane, p); err != nil {
				return err
			}
			return viaInsane(true)
		},
		dropped:  insaneDrops,
		teardown: func(*genl.Client) error { return viaInsane(false) },
	}
}

const nftTable = `table netdev bench {
	chain egress {
		type filter hook egress device "low0" priority 0; policy accept;
		numgen random mod 2 0 counter drop
	}
}
`

// stackedCase is one of the kernel's own stacked devices on low0, with
// 10.2.0.2 routed through it: a peer of insane. macvlan and ipvlan each
// take low0's rx_handler, so only one of them exists at a time.
func stackedCase(key, name, dev string, typ ...string) dropper {
	return dropper{
		key: key, name: name, loss: 0,
		setup: func(*genl.Client) error {
			cmds := [][]string{
				append([]string{"ip", "link", "add", dev, "link", lower, "type"}, typ...),
				{"ip", "link", "set", dev, "up"},
			}
			if typ[0] == "macvlan" {
				// An Ethernet device with ARP: a fixed neighbour.
				cmds = append(cmds, []string{"ip", "neigh", "replace", dstIP, "lladdr", "02:00:00:00:00:02", "dev", dev, "nud", "permanent"})
			}
			cmds = append(cmds, []string{"ip", "route", "replace", dstIP + "/32", "dev", dev})
			return runAll(cmds...)
		},
		dropped: func(*genl.Client) (uint64, error) { return 0, nil },
		teardown: func(*genl.Client) error {
			_, err := run("ip", "link", "del", dev)
			return err
		},
	}
}

var benchSeed = uint64(1)

// lowerCases returns cases()' (a) and (b), the baselines of the cost
// tables.
func lowerCases() (a, b dropper) {
	for _, d := range cases() {
		switch d.key {
		case "a":
			a = d
		case "b":
			b = d
		}
	}
	return a, b
}

func cases() []dropper {
	none := func(*genl.Client) error { return nil }
	return []dropper{
		{key: "a", name: "lower alone", loss: 0, setup: none, teardown: none,
			dropped: func(*genl.Client) (uint64, error) { return 0, nil }},
		stackedCase("m", "macvlan bridge", "mv0", "macvlan", "mode", "bridge"),
		stackedCase("v", "ipvlan l3", "ipv0", "ipvlan", "mode", "l3"),
		insaneCase("b", "insane pass", 0, genl.Pass()),
		insaneCase("c", "insane percent 50", 0.5, genl.Percent(50, nil)),
		insaneCase("s", "insane percent 50 seed 1", 0.5, genl.Percent(50, &benchSeed)),
		insaneCase("d", "insane time 10ms/10ms", -1, genl.Time(timeOn, timeOff)),
		insaneCase("z", "insane percent 0", 1, genl.Percent(0, nil)),
		{key: "e", name: "netem loss 50%", loss: 0.5,
			setup: func(*genl.Client) error {
				_, err := run("tc", "qdisc", "add", "dev", lower, "root", "netem", "loss", "50%")
				return err
			},
			dropped: func(*genl.Client) (uint64, error) {
				out, err := run("tc", "-s", "qdisc", "show", "dev", lower)
				if err != nil {
					return 0, err
				}
				return firstUint(reTcDropped, out)
			},
			teardown: func(*genl.Client) error {
				_, err := run("tc", "qdisc", "del", "dev", lower, "root")
				return err
			}},
		{key: "f", name: "gact netrand drop 1/2", loss: 0.5,
			setup: func(*genl.Client) error {
				return runAll(
					[]string{"tc", "qdisc", "add", "dev", lower, "clsact"},
					// tc-gact(8): with "random netrand ACTION VAL" the
					// packet gets ACTION with probability 1/VAL, the
					// first action (pass) otherwise.
					[]string{"tc", "filter", "add", "dev", lower, "egress", "matchall",
						"action", "gact", "pass", "random", "netrand", "drop", "2"})
			},
			dropped: func(*genl.Client) (uint64, error) {
				out, err := run("tc", "-s", "filter", "show", "dev", lower, "egress")
				if err != nil {
					return 0, err
				}
				return firstUint(reTcDropped, out)
			},
			teardown: func(*genl.Client) error {
				_, err := run("tc", "qdisc", "del", "dev", lower, "clsact")
				return err
			}},
		{key: "g", name: "nft numgen mod 2 drop", loss: 0.5,
			setup: func(*genl.Client) error {
				return runIn(nftTable, "nft", "-f", "-")
			},
			dropped: func(*genl.Client) (uint64, error) {
				out, err := run("nft", "list", "table", "netdev", "bench")
				if err != nil {
					return 0, err
				}
				return firstUint(reNftCounter, out)
			},
			teardown: func(*genl.Client) error {
				_, err := run("nft", "delete", "table", "netdev", "bench")
				return err
			}},
	}
}

// haveNft reports whether the guest has the nft tool.
func haveNft() bool {
	_, err := exec.LookPath("nft")
	return err == nil
}

// meminfo reads /proc/meminfo in kB.
func meminfo() (map[string]int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	m := make(map[string]int64)
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		m[strings.TrimSuffix(f[0], ":")] = v
	}
	return m, nil
}
