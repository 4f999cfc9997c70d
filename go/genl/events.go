package genl

import (
	"context"
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
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{events: make(chan Event, 16), conn: conn, cancel: cancel}
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
