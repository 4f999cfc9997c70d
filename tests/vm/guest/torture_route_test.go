//go:build vmtest

package guest

// Torture: the routes that the relay remembers per CPU (kernel/route.c) are
// changed under it, over and over, while two senders push IPv4 and IPv6
// through insane0; then the lower is deleted while the cache still holds
// its routes. Nothing may be misaccounted, crash, leak or keep the lower's
// unregistration waiting.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

func TestTortureRouteChurn(t *testing.T) {
	CheckKmsg(t)
	rounds := ttSize(1000, 10000)
	tp, _ := kTopo(t, nil)
	fam := ttFamily(t, tp.Borea)
	n, err := ttNlOpen(tp.Borea, 16) // NETLINK_GENERIC
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	Sysctl(t, tp.Borea, "net.ipv6.conf."+tp.BoreaDev+".disable_ipv6", "0")
	Sysctl(t, tp.Morgana, "net.ipv6.conf."+tp.MorganaDev+".disable_ipv6", "0")
	Sysctl(t, tp.Borea, "net.ipv6.conf.insane0.disable_ipv6", "0")
	RunIn(t, tp.Borea, "ip", "addr", "add", "2001:db8:7::1/64", "dev", tp.BoreaDev, "nodad")
	RunIn(t, tp.Morgana, "ip", "addr", "add", "2001:db8:7::2/64", "dev", tp.MorganaDev, "nodad")
	RunIn(t, tp.Borea, "ip", "-6", "route", "add", "2001:db8:7::2/128", "dev", "insane0")
	// The relay's lookups (oif veth0) consult table 77 first.
	RunIn(t, tp.Borea, "ip", "rule", "add", "oif", tp.BoreaDev, "lookup", "77", "pref", "100")
	RunIn(t, tp.Borea, "ip", "-6", "rule", "add", "oif", tp.BoreaDev, "lookup", "77", "pref", "100")

	sink4 := ttListen(t, tp.Morgana, "0.0.0.0:0", nil)
	sink6 := ttListen(t, tp.Morgana, "[::]:0", nil)
	dst4 := tp.MorganaIP + ":" + u64s(uint64(sink4.Port()))
	dst6 := "[2001:db8:7::2]:" + u64s(uint64(sink6.Port()))
	snd4 := ttSend(t, tp.Borea, []string{dst4}, 1, 0, 0)
	snd6 := ttSend(t, tp.Borea, []string{dst6}, 2, 1, 0)

	// Every change a fresh lookup would see: routes in and out of table
	// 77 (a gateway, on-link, prohibit, none), the rules themselves,
	// neighbours and the lower's MTU.
	// Every change a fresh lookup would see: routes in and out of table
	// 77 (a gateway, on-link, prohibit, none), the rules themselves,
	// neighbours and the lower's MTU. ip -batch takes no per-line -6, so
	// each family has its own batch, and the two run at once.
	// A flush under traffic may never complete; a replace always does.
	mac := strings.TrimSpace(RunIn(t, tp.Morgana, "cat", "/sys/class/net/"+tp.MorganaDev+"/address"))
	v4 := []string{
		"route replace 192.0.2.2/32 via 192.0.2.2 dev veth0 onlink table 77",
		"route replace prohibit 192.0.2.2/32 table 77",
		"route replace 192.0.2.2/32 dev veth0 table 77",
		"route del 192.0.2.2/32 table 77",
		"rule del pref 100",
		"neigh replace 192.0.2.2 lladdr " + mac + " dev veth0 nud stale",
		"link set veth0 mtu 1400",
		"rule add oif veth0 lookup 77 pref 100",
		"link set veth0 mtu 1500",
	}
	v6 := []string{
		"route replace 2001:db8:7::2/128 via 2001:db8:7::2 dev veth0 table 77",
		"route replace prohibit 2001:db8:7::2/128 table 77",
		"route replace 2001:db8:7::2/128 dev veth0 table 77",
		"route del 2001:db8:7::2/128 table 77",
		"rule del pref 100",
		"neigh replace 2001:db8:7::2 lladdr " + mac + " dev veth0 nud stale",
		"rule add oif veth0 lookup 77 pref 100",
	}
	batch := func(ops []string, n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(ops[i%len(ops)] + "\n")
		}
		f, err := os.CreateTemp("", "churn-*.batch")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(f.Name()) })
		f.WriteString(b.String())
		f.Close()
		return f.Name()
	}
	f4, f6 := batch(v4, rounds/2), batch(v6, rounds/2)
	start := time.Now()
	errs := make(chan error, 2)
	for _, args := range [][]string{{"-batch", f4}, {"-6", "-batch", f6}} {
		go func(args []string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := append([]string{"netns", "exec", tp.Borea, "ip"}, args...)
			out, err := exec.CommandContext(ctx, "ip", cmd...).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("ip %v: %v: %s", args, err, out)
			}
			errs <- err
		}(args)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	churn := time.Since(start)
	snd4.Stop()
	snd6.Stop()
	got4, got6 := sink4.Quiet(), sink6.Quiet()

	d, err := ttGet(n, fam, "insane0")
	if err != nil {
		t.Fatal(err)
	}
	attempted := uint64(snd4.attempted.Load() - snd4.refused.Load() + snd6.attempted.Load() - snd6.refused.Load())
	// IPv6 on insane0 sends its own multicast reports (counted no-route).
	if sum := d.ttSum(); sum < attempted || sum > attempted+64 {
		t.Errorf("relayed + dropped = %d for %d datagrams accepted by the sockets (%s)", sum, attempted, d.ttCounters())
	}
	for _, c := range []struct {
		name string
		typ  int
	}{{"malformed", uapi.StatsADropMalformed}, {"loop", uapi.StatsADropLoop}, {"no lower", uapi.StatsADropNoLower}} {
		if d.Stats[c.typ] != 0 {
			t.Errorf("%s: %d packets (%s)", c.name, d.Stats[c.typ], d.ttCounters())
		}
	}
	if uint64(got4+got6) > d.Stats[uapi.StatsARelayedPackets] {
		t.Errorf("morgana received %d datagrams, insane0 relayed only %d", got4+got6, d.Stats[uapi.StatsARelayedPackets])
	}
	if got4 == 0 || got6 == 0 {
		t.Errorf("morgana received %d IPv4 and %d IPv6 datagrams during the churn", got4, got6)
	}

	// The cache still holds routes through veth0: deleting it must not
	// wait for them, and insane0 is left detached.
	ttRunBounded(t, 30*time.Second, "ip", "netns", "exec", tp.Borea, "ip", "link", "del", tp.BoreaDev)
	if l := GetLink(t, tp.Borea, "insane0"); l.Link != "" {
		t.Errorf("insane0 still has lower %q after it was deleted", l.Link)
	}
	ttRunBounded(t, 30*time.Second, "ip", "netns", "exec", tp.Borea, "ip", "link", "del", "insane0")
	Figure(t, "route changes", uint64(rounds))
	Figure(t, "datagrams relayed", d.Stats[uapi.StatsARelayedPackets])
	t.Logf("%d route, rule, neighbour and MTU changes in %v; morgana got %d IPv4 and %d IPv6 datagrams; %s",
		rounds, churn.Round(time.Millisecond), got4, got6, d.ttCounters())
}
