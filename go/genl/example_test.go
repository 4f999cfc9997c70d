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
