package genl

import (
	"errors"
	"fmt"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// LinkData is the IFLA_INFO_DATA of a link of kind "insane": its policies.
// It implements rtnetlink.LinkDriver and is registered with
// rtnetlink.RegisterDriver when this package is imported.
type LinkData struct {
	// Policy is the link's (transmit) policy; nil sends no policy (the
	// kernel's default, or the current policy on a change) and is what a
	// reply without one decodes to.
	Policy *Policy
	// RxPolicy is the receive policy; nil sends none (off on creation,
	// unchanged on a change) and is what a reply decodes to while the
	// receive policy is off.
	RxPolicy *Policy
	// RxOff turns the receive policy off on a change; it excludes
	// RxPolicy. Replies never set it.
	RxOff bool
}

var _ rtnetlink.LinkDriver = &LinkData{}

func init() {
	// Another package may have registered the kind first; its driver then
	// decodes insane links and ours is not needed.
	_ = rtnetlink.RegisterDriver(&LinkData{})
}

// New returns an empty LinkData.
func (*LinkData) New() rtnetlink.LinkDriver { return &LinkData{} }

// Kind returns "insane".
func (*LinkData) Kind() string { return uapi.LinkKind }

// validate checks what Encode would send.
func (d *LinkData) validate() error {
	if d.RxPolicy != nil && d.RxOff {
		return fmt.Errorf("%w: a receive policy and rx off at once", ErrInvalidPolicy)
	}
	if d.Policy != nil {
		if err := d.Policy.Validate(); err != nil {
			return err
		}
	}
	if d.RxPolicy != nil {
		if err := d.RxPolicy.ValidateRx(); err != nil {
			return fmt.Errorf("receive policy: %w", err)
		}
	}
	return nil
}

// Encode writes the policy attributes.
func (d *LinkData) Encode(ae *netlink.AttributeEncoder) error {
	if err := d.validate(); err != nil {
		return err
	}
	if d.Policy != nil {
		encodePolicy(ae, *d.Policy)
	}
	if d.RxPolicy != nil {
		rx := *d.RxPolicy
		ae.Nested(uapi.PolicyARx, func(nae *netlink.AttributeEncoder) error {
			encodePolicy(nae, rx)
			return nil
		})
	}
	if d.RxOff {
		ae.Flag(uapi.PolicyARxOff, true)
	}
	return nil
}

// Decode reads the policy attributes.
func (d *LinkData) Decode(ad *netlink.AttributeDecoder) error {
	var p Policy
	d.RxPolicy, d.RxOff = nil, false
	err := decodePolicy(ad, &p, &d.RxPolicy, nil)
	switch {
	case errors.Is(err, errNoMode):
		d.Policy = nil
		return nil
	case err != nil:
		return err
	}
	d.Policy = &p
	return nil
}

// rtExecute sends one rtnetlink link request and decodes the link replies.
func (c *Client) rtExecute(typ netlink.HeaderType, flags netlink.HeaderFlags, m *rtnetlink.LinkMessage) ([]rtnetlink.LinkMessage, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	msgs, err := c.rt.Execute(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | flags},
		Data:   b,
	})
	if err != nil {
		return nil, err
	}
	var links []rtnetlink.LinkMessage
	for _, msg := range msgs {
		if msg.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		var lm rtnetlink.LinkMessage
		if err := lm.UnmarshalBinary(msg.Data); err != nil {
			return nil, err
		}
		links = append(links, lm)
	}
	return links, nil
}

// link returns the rtnetlink view of the link called name.
func (c *Client) link(op, name string) (*rtnetlink.LinkMessage, error) {
	links, err := c.rtExecute(unix.RTM_GETLINK, 0, &rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{Name: name},
	})
	if err != nil {
		return nil, wrapError(op, err, false)
	}
	if len(links) != 1 || links[0].Attributes == nil {
		return nil, fmt.Errorf("%s: kernel sent %d links for %q, want 1", op, len(links), name)
	}
	return &links[0], nil
}

// insaneLink returns the link called name, or an error matching
// os.ErrNotExist if it is missing or not an insane link.
func (c *Client) insaneLink(op, name string) (*rtnetlink.LinkMessage, error) {
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	lm, err := c.link(op, name)
	if err != nil {
		return nil, err
	}
	var kind string
	if lm.Attributes.Info != nil {
		kind = lm.Attributes.Info.Kind
	}
	if kind != uapi.LinkKind {
		return nil, fmt.Errorf("%s: %w", op, &notInsaneError{name: name, kind: kind})
	}
	return lm, nil
}

func checkName(op, name string) error {
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return &Error{Op: op, Err: unix.EINVAL, Message: fmt.Sprintf("invalid interface name %q", name)}
	}
	return nil
}

// AddLink creates an insane link called name on the lower device called
// lower, in the client's network namespace. lower may be empty: the link is
// then detached. p may be nil for the kernel's default policy. The receive
// policy is off (see AddLinkRx).
func (c *Client) AddLink(name, lower string, p *Policy) error {
	return c.AddLinkRx(name, lower, p, nil)
}

// AddLinkRx is AddLink with a receive policy too: rx nil leaves it off.
func (c *Client) AddLinkRx(name, lower string, p, rx *Policy) error {
	op := "add link " + name
	if err := checkName(op, name); err != nil {
		return err
	}
	if p != nil {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if rx != nil {
		if err := rx.ValidateRx(); err != nil {
			return fmt.Errorf("%s: receive policy: %w", op, err)
		}
	}
	var lowerIndex uint32
	if lower != "" {
		if err := checkName(op, lower); err != nil {
			return err
		}
		lm, err := c.link(op+": lower "+lower, lower)
		if err != nil {
			return err
		}
		lowerIndex = lm.Index
	}
	_, err := c.rtExecute(unix.RTM_NEWLINK, netlink.Create|netlink.Excl|netlink.Acknowledge, &rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{
			Name: name,
			Type: lowerIndex, // IFLA_LINK
			Info: &rtnetlink.LinkInfo{Kind: uapi.LinkKind, Data: &LinkData{Policy: p, RxPolicy: rx}},
		},
	})
	if err != nil {
		err = wrapError(op, err, false)
		if errors.Is(err, unix.EOPNOTSUPP) {
			// rtnetlink's "Unknown device type": no driver for the kind,
			// and none could be loaded. The driver itself never answers
			// EOPNOTSUPP to a newlink.
			return &NotLoadedError{Op: op, Err: err}
		}
		return err
	}
	return nil
}

// DeleteLink deletes the insane link called name. It refuses links of other
// kinds with an error matching os.ErrNotExist.
func (c *Client) DeleteLink(name string) error {
	op := "delete link " + name
	lm, err := c.insaneLink(op, name)
	if err != nil {
		return err
	}
	_, err = c.rtExecute(unix.RTM_DELLINK, netlink.Acknowledge, &rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC,
		Index:  lm.Index,
	})
	return wrapError(op, err, false)
}

// SetLinkPolicy replaces the policy of the insane link called name over
// rtnetlink (the kernel's changelink), as "ip link set NAME type insane"
// would.
func (c *Client) SetLinkPolicy(name string, p Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("change link %s: %w", name, err)
	}
	return c.ChangeLink(name, LinkData{Policy: &p})
}

// SetLinkRxPolicy sets the receive policy of the insane link called name
// over rtnetlink, as "ip link set NAME type insane rx ..." would; nil turns
// it off ("rx off").
func (c *Client) SetLinkRxPolicy(name string, rx *Policy) error {
	if rx == nil {
		return c.ChangeLink(name, LinkData{RxOff: true})
	}
	if err := rx.ValidateRx(); err != nil {
		return fmt.Errorf("change link %s: receive policy: %w", name, err)
	}
	return c.ChangeLink(name, LinkData{RxPolicy: rx})
}

// ChangeLink sends d as the IFLA_INFO_DATA of a change of the insane link
// called name (the kernel's changelink): what d leaves nil is kept.
func (c *Client) ChangeLink(name string, d LinkData) error {
	op := "change link " + name
	if err := d.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	lm, err := c.insaneLink(op, name)
	if err != nil {
		return err
	}
	_, err = c.rtExecute(unix.RTM_NEWLINK, netlink.Acknowledge, &rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC,
		Index:  lm.Index,
		Attributes: &rtnetlink.LinkAttributes{
			Info: &rtnetlink.LinkInfo{Kind: uapi.LinkKind, Data: &d},
		},
	})
	return wrapError(op, err, true)
}

// LinkPolicy returns the policy of the insane link called name as rtnetlink
// reports it (IFLA_INFO_DATA), nil if the kernel sends none.
func (c *Client) LinkPolicy(name string) (*Policy, error) {
	d, err := c.LinkData(name)
	if err != nil || d == nil {
		return nil, err
	}
	return d.Policy, nil
}

// LinkData returns the IFLA_INFO_DATA of the insane link called name as
// rtnetlink reports it: both policies. It is nil if the kernel sends none.
func (c *Client) LinkData(name string) (*LinkData, error) {
	lm, err := c.insaneLink("get link "+name, name)
	if err != nil {
		return nil, err
	}
	if d, ok := lm.Attributes.Info.Data.(*LinkData); ok {
		return d, nil
	}
	return nil, nil
}
