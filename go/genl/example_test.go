package genl_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/insane-netdev/insane/go/genl"
)

// Create an insane device on eth0 that relays 80 % of the packets, in a
// reproducible pattern, and watch its changes.
func Example() {
	c, err := genl.Dial(nil) // or &genl.Options{NetNSPath: "/var/run/netns/blue"}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	seed := uint64(42)
	p := genl.Percent(80, &seed)
	if err := c.AddLink("insane0", "eth0", &p); err != nil {
		if errors.Is(err, genl.ErrNotLoaded) {
			log.Fatal("modprobe insane first")
		}
		log.Fatal(err)
	}

	// Which of the first packets will be dropped is known in advance.
	for k := uint64(0); k < 10; k++ {
		if relay, _ := p.Relays(k); !relay {
			fmt.Println("packet", k, "will be dropped")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := c.Subscribe(ctx)
	if err != nil {
		log.Fatal(err)
	}
	on := genl.Time(500*time.Millisecond, time.Second)
	if err := c.ConfigureDevice("insane0", genl.Config{Policy: &on, ResetStats: true}); err != nil {
		log.Fatal(err)
	}
	for ev := range sub.Events() {
		fmt.Println(ev.Type, ev.Device.Name, ev.Device.Policy)
	}

	d, err := c.Device("insane0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Stats.RelayedPackets, "relayed,", d.Stats.Dropped(), "dropped")
}

// Flap insane0's carrier, 5 s up then 2 s down, and wait for the next
// outage to begin and to end.
func ExampleSubscription_WaitEdge() {
	c, err := genl.Dial(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Subscribe first: edges before the subscription are not seen.
	sub, err := c.Subscribe(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	p := genl.Time(5*time.Second, 2*time.Second)
	p.Carrier, p.Events = true, true
	if err := c.SetPolicy("insane0", p); err != nil {
		log.Fatal(err)
	}
	down, err := sub.WaitEdge(ctx, "insane0", genl.EdgeDown)
	if err != nil {
		log.Fatal(err)
	}
	up, err := sub.WaitEdge(ctx, "insane0", genl.EdgeUp)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("carrier off from", down.Realtime, "for", up.Time-down.Time, "; the timer ran", down.Late(), "late")
}

// A 10 Mbit/s link that duplicates 1 % and corrupts 0.5 % of the packets,
// seeded: which packets, and which bit, are known in advance.
func ExamplePredictor_NextExtra() {
	rate, err := genl.ParseRate("10mbit")
	if err != nil {
		log.Fatal(err)
	}
	seed := uint64(3)
	p := genl.Policy{Mode: genl.ModePass, Rate: rate, Overhead: 38, Duplicate: 1, Corrupt: 0.5, Seed: &seed}
	fmt.Println(p)
	fmt.Println("a 1500-byte packet takes", p.Serialization(1500))

	pr := genl.NewPredictor(seed)
	for k := 0; k < 1000; k++ {
		dup, corrupt, y := pr.NextExtra(p)
		if dup {
			fmt.Println("packet", k, "duplicated")
		}
		if corrupt {
			// A 1500-byte IPv4 packet of a 20-byte header: the bit
			// falls in the 1480 bytes after it.
			i, mask := genl.CorruptBit(y, 1480)
			fmt.Printf("packet %d corrupted: byte %d ^= %#02x\n", k, 20+i, mask)
		}
	}
	// Output:
	// mode pass rate 10mbit overhead 38 duplicate 1 corrupt 0.5 seed 3
	// a 1500-byte packet takes 1.2304ms
	// packet 80 duplicated
	// packet 162 duplicated
	// packet 178 corrupted: byte 68 ^= 0x40
	// packet 229 duplicated
	// packet 278 corrupted: byte 151 ^= 0x40
	// packet 372 corrupted: byte 431 ^= 0x20
	// packet 467 duplicated
	// packet 488 duplicated
	// packet 502 duplicated
	// packet 620 corrupted: byte 39 ^= 0x04
	// packet 685 duplicated
	// packet 714 corrupted: byte 614 ^= 0x01
	// packet 765 duplicated
	// packet 784 corrupted: byte 1027 ^= 0x10
	// packet 895 duplicated
	// packet 901 corrupted: byte 1047 ^= 0x08
}
