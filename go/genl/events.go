package genl

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// A Subscription delivers the events of the client's network namespace, in
// order, from the moment Subscribe returns.
type Subscription struct {
	events chan Event
	conn   eventConn
	cancel context.CancelFunc
	// parent is the context Subscribe was given.
	parent context.Context

	mu  sync.Mutex
	err error
}

// Subscribe joins the multicast group "events" on a connection of its own
// and delivers each event on the channel that Events returns, until ctx is
// done, Close is called or receiving fails. Events that happen after
// Subscribe returns are not missed.
func (c *Client) Subscribe(ctx context.Context) (*Subscription, error) {
	f, err := c.Family()
	if err != nil {
		return nil, err
	}
	var group uint32
	for _, g := range f.Groups {
		if g.Name == uapi.GenlMcgrpEvents {
			group = g.ID
		}
	}
	if group == 0 {
		return nil, fmt.Errorf("generic netlink family %s has no multicast group %q", uapi.GenlName, uapi.GenlMcgrpEvents)
	}
	conn, err := c.dialEvents()
	if err != nil {
		return nil, err
	}
	if err := conn.JoinGroup(group); err != nil {
		_ = conn.Close()
		return nil, wrapError("join multicast group "+uapi.GenlMcgrpEvents, err, false)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{events: make(chan Event, 16), conn: conn, cancel: cancel, parent: parent}
	// Closing the connection is what interrupts a blocked Receive.
	context.AfterFunc(ctx, func() { _ = conn.Close() })
	go s.run(ctx)
	return s, nil
}

func (s *Subscription) run(ctx context.Context) {
	defer close(s.events)
	defer s.cancel()
	for {
		msgs, _, err := s.conn.Receive()
		if ctx.Err() != nil {
			return // ended on purpose, whatever Receive said
		}
		if err != nil {
			s.setErr(wrapError("receive events", err, false))
			return
		}
		for _, m := range msgs {
			if m.Header.Command != uapi.CmdEvent {
				continue // not an event: nothing for us
			}
			ev, err := parseEvent(m)
			if err != nil {
				s.setErr(fmt.Errorf("decoding event: %w", err))
				return
			}
			select {
			case s.events <- *ev:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (s *Subscription) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Events returns the channel of events. It is closed when the subscription
// ends; Err then tells why.
func (s *Subscription) Events() <-chan Event { return s.events }

// Err returns the error that ended the subscription, nil while it runs and
// when it ended because its context was done or Close was called.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription and waits until its channel is closed.
func (s *Subscription) Close() error {
	s.cancel()
	for range s.events {
	}
	return nil
}

// ErrSubscriptionClosed is returned by Subscription.WaitEdge once the
// subscription has been closed.
var ErrSubscriptionClosed = errors.New("insane: the event subscription is closed")

// WaitEdge consumes the subscription's events until an edge (EventEdge) of
// the device called device, in either direction, whose State is state, and
// returns it; the events before it, of any kind and any device, are
// consumed and dropped. It returns ctx's error if ctx ends first, and the
// subscription's error (see Err; ErrSubscriptionClosed after Close, the
// context's error if the subscription's context ended) if the subscription
// ends first: a listener that falls behind loses events, and its
// subscription ends with ENOBUFS.
//
// Called in turn on one subscription, WaitEdge sees every edge after the
// subscription started, so that a test can wait for a DOWN edge and then
// the UP edge that follows it.
//
// With Carrier, an UP edge's event can come before the device transmits
// again: until the kernel's link watch has run (usually well within a
// millisecond), insane0 keeps the OFF window's no-op queue, which frees
// what is sent uncounted. A sender that must not lose its first packets
// waits for the device's operational state UP as well (docs/flaps.md).
func (s *Subscription) WaitEdge(ctx context.Context, device string, state EdgeState) (*Edge, error) {
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				if err := s.Err(); err != nil {
					return nil, err
				}
				if err := s.parent.Err(); err != nil {
					return nil, err
				}
				return nil, ErrSubscriptionClosed
			}
			if ev.Type == EventEdge && ev.Edge != nil && ev.Device.Name == device && ev.Edge.State == state {
				return ev.Edge, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// WaitEdge subscribes to the events (see Subscribe) and returns the next
// edge of the device called device, in either direction, whose State is
// state; the device's policy must have Events for there to be any. It
// returns ctx's error if ctx ends first. Edges that happened before the
// call are not seen, and the subscription ends with the call: to follow a
// sequence of edges without missing one between two calls, Subscribe and
// call Subscription.WaitEdge in turn.
func (c *Client) WaitEdge(ctx context.Context, device string, state EdgeState) (*Edge, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.WaitEdge(ctx, device, state)
}
