//go:build vmtest

package guest

// Torture: teardown while edge timers run (issue 17). Insane devices with
// policies of 10 ms windows (INSANE_EDGE_MIN_NS) that flap their carrier
// and send edge events, in both directions, are made, changed, taken down
// and up, deleted, left by their lowers, deleted with their namespace and
// with the module, over and over, with a raw subscriber to the events
// group. Nothing may come late: no edge fired after its device was deleted
// or while it was down. At the end every device and lower goes at once
// (a reference left behind would hold it), and the module unloads within a
// bound (rtnl_link_unregister() waits for every namespace being deleted).
//
// make test runs 150 iterations (3 namespace deletions, 2 unloads);
// INSANE_TORTURE=full runs 1000 (20 and 10).

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/insane-netdev/insane/go/genl/uapi"
	"golang.org/x/sys/unix"
)

// ttEdgeWorld is the torture's state: the namespace, its sockets, and what
// it holds.
type ttEdgeWorld struct {
	t      *testing.T
	r      *rand.Rand
	ns     string
	rt, gn *ttNl
	fam    uint16
	ev     *egEvents
	lowers map[string]uint32 // dummy lowers by name, with their ifindex
	devs   map[string]uint32 // insane devices by name, with their ifindex
	// dead: when each deleted device's deletion was acknowledged; down:
	// since when each device that is down has been.
	dead, down map[uint32]uint64
	edges      int
	late       time.Duration // the worst FIRED_NS - TIME_NS
	ops        map[string]int
}

var ttEdgeLowers = []string{"ted0", "ted1"}

func (w *ttEdgeWorld) setup() {
	t := w.t
	Run(t, "ip", "netns", "add", w.ns)
	var sc string
	sc = "set -e\nip -n " + w.ns + " link set lo up\n"
	for _, l := range ttEdgeLowers {
		sc += fmt.Sprintf("ip -n %s link add %s type dummy\nip -n %s link set %s up\n", w.ns, l, w.ns, l)
	}
	Sh(t, sc)
	var err error
	if w.rt, err = ttNlOpen(w.ns, unix.NETLINK_ROUTE); err != nil {
		t.Fatal(err)
	}
	w.lowers = map[string]uint32{}
	for _, l := range ttEdgeLowers {
		w.lowers[l] = w.ifindex(l)
	}
	w.openGenl()
	w.devs = map[string]uint32{}
	w.dead = map[uint32]uint64{}
	w.down = map[uint32]uint64{}
}

func (w *ttEdgeWorld) openGenl() {
	var err error
	if w.gn, err = ttNlOpen(w.ns, unix.NETLINK_GENERIC); err != nil {
		w.t.Fatal(err)
	}
	w.ev = egListen(w.t, w.ns)
	w.fam = w.ev.fam
}

func (w *ttEdgeWorld) closeGenl() {
	w.poll()
	w.ev.sub.Close()
	w.gn.Close()
}

// ifindex reads a device's index with RTM_GETLINK.
func (w *ttEdgeWorld) ifindex(name string) uint32 {
	msgs, r, err := kmDo(w.rt, unix.RTM_GETLINK, 0, make([]byte, unix.SizeofIfInfomsg), ttIfname(name))
	if err != nil || r.errno != 0 || len(msgs) != 1 {
		w.t.Fatalf("RTM_GETLINK %s: %v %v %q", name, err, r.errno, r.msg)
	}
	return binary.NativeEndian.Uint32(msgs[0].Data[4:])
}

// ttIfi is an ifinfomsg that sets or clears IFF_UP when change is set.
func ttIfi(up, change bool) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	if change {
		b[12] = byte(unix.IFF_UP)
		if up {
			b[8] = byte(unix.IFF_UP)
		}
	}
	return b
}

func ttIfname(name string) kmA { return kmA{typ: unix.IFLA_IFNAME, data: append([]byte(name), 0)} }

// must fails unless the request was acknowledged.
func (w *ttEdgeWorld) must(what string, r kmResult, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
	if r.errno != 0 {
		w.t.Fatalf("%s: %v: %s", what, r.errno, r.msg)
	}
	w.ops[what]++
}

// Policies with 10 ms windows, or none.
func (w *ttEdgeWorld) txPolicy() []kmA {
	ms := time.Millisecond
	switch w.r.IntN(6) {
	case 0:
		return kmJoin(kmTime(10*ms, 10*ms), egCarrier, egEvents_)
	case 1:
		return kmJoin(kmTime(10*ms, 30*ms), egCarrier)
	case 2:
		return kmJoin(kmMode(uapi.ModeSchedule), kmSteps(kmStep(kmMode(uapi.ModeDrop), kmDur(10*ms)),
			kmStep(kmMode(uapi.ModePass), kmDur(10*ms)), kmStep(kmMode(uapi.ModePercent), kmPercent(50), kmDur(10*ms))), egCarrier, egEvents_)
	case 3:
		return kmJoin(kmMode(uapi.ModeSchedule), kmSteps(kmStep(kmMode(uapi.ModePass), kmDur(10*ms)),
			kmStep(kmMode(uapi.ModeDrop), kmDur(10*ms)), kmStep(kmMode(uapi.ModePass), kmDur(10*ms))), kmOnce(), egEvents_, egCarrier)
	case 4:
		return kmJoin(kmTime(10*ms, 10*ms), egEvents_)
	}
	return []kmA{kmMode(uapi.ModePass)}
}

// rxPolicy is a receive policy with events, or nil for off.
func (w *ttEdgeWorld) rxPolicy() []kmA {
	ms := time.Millisecond
	switch w.r.IntN(3) {
	case 0:
		return kmJoin(kmTime(10*ms, 10*ms), egEvents_)
	case 1:
		return kmJoin(kmMode(uapi.ModeSchedule), kmSteps(kmStep(kmMode(uapi.ModeDrop), kmDur(15*ms)),
			kmStep(kmMode(uapi.ModePass), kmDur(10*ms))), egEvents_)
	}
	return nil
}

func (w *ttEdgeWorld) anyLower() (string, bool) {
	var names []string
	for _, l := range ttEdgeLowers {
		if _, ok := w.lowers[l]; ok {
			names = append(names, l)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	return names[w.r.IntN(len(names))], true
}

// create makes device name, up, on a lower (if one is there, most of the
// time) with a transmit policy and maybe a receive policy, in one request.
func (w *ttEdgeWorld) create(name string) {
	data := w.txPolicy()
	if rx := w.rxPolicy(); rx != nil {
		data = append(data, kmNest(uapi.PolicyARx, rx...))
	}
	attrs := []kmA{ttIfname(name)}
	if l, ok := w.anyLower(); ok && w.r.IntN(4) != 0 {
		attrs = append(attrs, kmU32(unix.IFLA_LINK, w.lowers[l]))
	}
	attrs = append(attrs, kmInfo(data...))
	_, r, err := kmDo(w.rt, unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ttIfi(true, true), attrs...)
	w.must("create", r, err)
	w.devs[name] = w.ifindex(name)
}

func (w *ttEdgeWorld) genlSet(what, name string, attrs ...kmA) {
	_, r, err := kmDo(w.gn, w.fam, 0, kmGenlHead(uapi.CmdSetDevice), append([]kmA{kmName(name)}, attrs...)...)
	w.must(what, r, err)
}

// poll reads the edges that have come and checks that none came late.
func (w *ttEdgeWorld) poll() {
	w.t.Helper()
	for {
		select {
		case m := <-w.ev.sub.msgs:
			e, err := w.ev.parse(m)
			if err != nil {
				w.t.Fatal(err)
			}
			if e == nil {
				continue
			}
			w.edges++
			w.late = max(w.late, time.Duration(e.Fired-e.Time))
			if at, ok := w.dead[e.Index]; ok && e.Fired > at {
				w.t.Errorf("edge %v fired %v after its device was deleted", e, time.Duration(e.Fired-at))
			}
			if at := w.down[e.Index]; at != 0 && e.Fired > at {
				w.t.Errorf("edge %v fired %v after its device went down", e, time.Duration(e.Fired-at))
			}
			if e.Fired < e.Time {
				w.t.Errorf("edge %v fired before its time", e)
			}
		default:
			if _, err := w.ev.sub.Err(); err != nil {
				w.t.Fatalf("events subscription: %v", err)
			}
			return
		}
	}
}

// step does one random thing to the world.
func (w *ttEdgeWorld) step() {
	name := "tee" + strconv.Itoa(w.r.IntN(4))
	idx, exists := w.devs[name]
	if !exists {
		w.create(name)
		return
	}
	switch w.r.IntN(10) {
	case 0, 1:
		w.genlSet("set transmit policy", name, kmNest(uapi.DeviceAPolicy, w.txPolicy()...))
	case 2:
		if rx := w.rxPolicy(); rx != nil {
			w.genlSet("set receive policy", name, kmNest(uapi.DeviceARxPolicy, rx...))
		} else {
			w.genlSet("receive policy off", name, kmU32(uapi.DeviceAFlags, uapi.DeviceFRxOff))
		}
	case 3:
		data := w.txPolicy()
		if rx := w.rxPolicy(); rx != nil {
			data = append(data, kmNest(uapi.PolicyARx, rx...))
		} else {
			data = append(data, kmFlag(uapi.PolicyARxOff))
		}
		_, r, err := kmDo(w.rt, unix.RTM_NEWLINK, 0, make([]byte, unix.SizeofIfInfomsg), ttIfname(name), kmInfo(data...))
		w.must("changelink", r, err)
	case 4:
		_, r, err := kmDo(w.rt, unix.RTM_DELLINK, 0, make([]byte, unix.SizeofIfInfomsg), ttIfname(name))
		w.must("delete device", r, err)
		w.dead[idx] = egMono()
		delete(w.devs, name)
	case 5:
		if w.down[idx] == 0 {
			_, r, err := kmDo(w.rt, unix.RTM_NEWLINK, 0, ttIfi(false, true), ttIfname(name))
			w.must("down", r, err)
			w.down[idx] = egMono()
		} else {
			// What came before the up is checked against the down.
			w.poll()
			_, r, err := kmDo(w.rt, unix.RTM_NEWLINK, 0, ttIfi(true, true), ttIfname(name))
			w.must("up", r, err)
			delete(w.down, idx)
		}
	case 6:
		if l, ok := w.anyLower(); ok {
			_, r, err := kmDo(w.rt, unix.RTM_DELLINK, 0, make([]byte, unix.SizeofIfInfomsg), ttIfname(l))
			w.must("delete lower", r, err)
			delete(w.lowers, l)
		}
	case 7:
		for _, l := range ttEdgeLowers {
			if _, ok := w.lowers[l]; ok {
				continue
			}
			_, r, err := kmDo(w.rt, unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ttIfi(true, true), ttIfname(l),
				kmNest(unix.IFLA_LINKINFO, kmA{typ: unix.IFLA_INFO_KIND, data: []byte("dummy\x00")}))
			w.must("add lower", r, err)
			w.lowers[l] = w.ifindex(l)
			return
		}
		if l, ok := w.anyLower(); ok {
			w.genlSet("attach", name, kmA{typ: uapi.DeviceALowerIfname, data: append([]byte(l), 0)})
		}
	case 8:
		w.genlSet("detach", name, kmU32(uapi.DeviceAFlags, uapi.DeviceFDetach))
	case 9:
		if _, _, err := ttDump(w.gn, w.fam); err != nil {
			w.t.Fatalf("dump: %v", err)
		}
		w.ops["dump"]++
	}
}

// ensure makes sure that at least n devices exist, up, with timers.
func (w *ttEdgeWorld) ensure(n int) {
	for i := 0; len(w.devs) < n; i++ {
		if name := "tee" + strconv.Itoa(i); w.devs[name] == 0 {
			w.create(name)
		}
	}
	for name, idx := range w.devs {
		if w.down[idx] != 0 {
			_, r, err := kmDo(w.rt, unix.RTM_NEWLINK, 0, ttIfi(true, true), ttIfname(name))
			w.must("up", r, err)
			delete(w.down, idx)
		}
		w.genlSet("set transmit policy", name, kmNest(uapi.DeviceAPolicy, kmJoin(kmTime(10*time.Millisecond, 10*time.Millisecond), egCarrier, egEvents_)...),
			kmNest(uapi.DeviceARxPolicy, kmJoin(kmTime(10*time.Millisecond, 10*time.Millisecond), egEvents_)...))
	}
	time.Sleep(30 * time.Millisecond)
}

// deleteNetns deletes the namespace with its devices and timers, and makes
// it again.
func (w *ttEdgeWorld) deleteNetns() {
	w.ensure(3)
	w.closeGenl()
	w.rt.Close()
	ttRunBounded(w.t, 30*time.Second, "ip", "netns", "del", w.ns)
	w.ops["delete netns"]++
	w.setup()
}

// unload removes the module with devices whose timers run, and loads it
// again.
func (w *ttEdgeWorld) unload() {
	w.ensure(3)
	w.closeGenl()
	start := time.Now()
	for {
		_, err := TryRun("modprobe", "-r", "insane")
		if err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			w.t.Fatalf("modprobe -r insane still failing after %v: %v", time.Since(start), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ModuleLoaded() {
		w.t.Fatal("/sys/module/insane still exists after modprobe -r")
	}
	ttNoInsane(w.t, w.ns)
	w.ops["unload"]++
	LoadModule(w.t)
	w.openGenl()
	w.devs = map[string]uint32{}
	w.dead = map[uint32]uint64{}
	w.down = map[uint32]uint64{}
}

func TestTortureEdgeTeardown(t *testing.T) {
	CheckKmsg(t)
	mark := MarkKmsg(t)
	LoadModule(t)
	iters := ttSize(150, 1000)
	nsEvery, rmEvery := ttSize(50, 50), ttSize(60, 100)
	seed := uint64(0xed9e17)
	w := &ttEdgeWorld{t: t, r: rand.New(rand.NewPCG(seed, 17)), ns: "ttedge", ops: map[string]int{}}
	t.Cleanup(func() { TryRun("ip", "netns", "del", w.ns) })
	w.setup()
	start := time.Now()
	for i := 0; i < iters; i++ {
		switch {
		case i%nsEvery == nsEvery-1:
			w.deleteNetns()
		case i%rmEvery == rmEvery/2:
			w.unload()
		default:
			w.step()
		}
		// The timers run meanwhile: 0 to 11 ms, about one window.
		time.Sleep(time.Duration(w.r.IntN(12)) * time.Millisecond)
		w.poll()
	}
	took := time.Since(start)

	// Every device and lower goes at once, with its timers running.
	w.ensure(3)
	for name, idx := range w.devs {
		_, r, err := kmDo(w.rt, unix.RTM_DELLINK, 0, make([]byte, unix.SizeofIfInfomsg), ttIfname(name))
		w.must("delete device", r, err)
		w.dead[idx] = egMono()
	}
	time.Sleep(50 * time.Millisecond)
	w.poll()
	for l := range w.lowers {
		_, r, err := kmDo(w.rt, unix.RTM_DELLINK, 0, make([]byte, unix.SizeofIfInfomsg), ttIfname(l))
		w.must("delete lower", r, err)
	}
	ttNoInsane(t, w.ns)
	if nobufs, err := w.ev.sub.Err(); err != nil || nobufs != 0 {
		t.Logf("events subscription: %v, %d ENOBUFS (events lost to a full socket, which the kernel may do)", err, nobufs)
	}
	w.closeGenl()
	w.rt.Close()
	ttRunBounded(t, 30*time.Second, "ip", "netns", "del", w.ns)
	// Unloading waits for the namespaces being deleted, and their devices
	// for their last references.
	unload := time.Now()
	ttRunBounded(t, 60*time.Second, "modprobe", "-r", "insane")
	unloadTook := time.Since(unload)
	LoadModule(t)
	ttNoWaiting(t, mark)
	t.Logf("%d iterations in %v (seed %#x), %d edge events checked (worst FIRED_NS - TIME_NS %v), final unload %v; operations %v",
		iters, took.Round(time.Millisecond), seed, w.edges, w.late, unloadTook.Round(time.Millisecond), w.ops)
	Figure(t, "edge teardown iterations", uint64(iters))
	Figure(t, "edge events checked", uint64(w.edges))
}
