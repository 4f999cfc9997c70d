// Package genl is the Go client of insane, the Linux virtual network
// interface for fault injection.
//
// A Client talks to the kernel module over its generic netlink family
// "insane" (devices, policies, counters, events) and over rtnetlink (creating
// and deleting links of kind "insane"). Importing the package also registers
// LinkData with github.com/jsimonetti/rtnetlink/v2, so that any rtnetlink
// user decodes the IFLA_INFO_DATA of insane links.
//
// Errors keep the kernel's extended acknowledgement message (see Error).
// errors.Is(err, os.ErrNotExist) holds for a missing device and for a
// missing module (see NotLoadedError), errors.Is(err, os.ErrPermission) for
// a lack of CAP_NET_ADMIN.
package genl

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"

	"github.com/insane-netdev/insane/go/genl/uapi"
)

// Options configure Dial.
type Options struct {
	// NetNS is an open file descriptor of the network namespace to work
	// in. The Client does not close it, and it must stay open while the
	// Client is used. 0 means the caller's network namespace.
	NetNS int

	// NetNSPath names the network namespace by a path, such as
	// /var/run/netns/NAME (what "ip netns add NAME" creates) or
	// /proc/PID/ns/net. Dial opens it; Close closes it. It excludes NetNS.
	NetNSPath string
}

// A Client is a connection to the insane kernel module. Its methods may be
// called from several goroutines.
type Client struct {
	g  *genetlink.Conn
	rt *netlink.Conn

	// dialEvents opens another generic netlink connection in the same
	// network namespace, for event subscriptions.
	dialEvents func() (eventConn, error)
	closeNS    func() error

	mu     sync.Mutex
	family *genetlink.Family
}

// Dial connects to the kernel in the network namespace that o selects (the
// caller's when o is nil). It succeeds without the module: the generic
// netlink family is looked up on first use, so that a method reports a
// missing module with a NotLoadedError, and AddLink can still load the
// module on demand.
func Dial(o *Options) (*Client, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	nsfd := opts.NetNS
	closeNS := func() error { return nil }
	if opts.NetNSPath != "" {
		if nsfd != 0 {
			return nil, errors.New("insane: Options.NetNS and Options.NetNSPath are exclusive")
		}
		fd, err := unix.Open(opts.NetNSPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open network namespace: %w", &os.PathError{Op: "open", Path: opts.NetNSPath, Err: err})
		}
		nsfd = fd
		closeNS = func() error { return unix.Close(fd) }
	}
	dialGenl := func() (*genetlink.Conn, error) {
		g, err := genetlink.Dial(&netlink.Config{NetNS: nsfd, Strict: true})
		if err != nil {
			return nil, wrapDialError("generic netlink", err)
		}
		if err := g.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
			_ = g.Close()
			return nil, wrapDialError("generic netlink", err)
		}
		return g, nil
	}
	g, err := dialGenl()
	if err != nil {
		_ = closeNS()
		return nil, err
	}
	rt, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: nsfd, Strict: true})
	if err == nil {
		if err = rt.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
			_ = rt.Close()
		}
	}
	if err != nil {
		_ = g.Close()
		_ = closeNS()
		return nil, wrapDialError("rtnetlink", err)
	}
	c := newClient(g, rt, func() (eventConn, error) { return dialGenl() })
	c.closeNS = closeNS
	return c, nil
}

func wrapDialError(what string, err error) error {
	return fmt.Errorf("dial %s: %w", what, err)
}

// newClient builds a Client on existing connections; tests pass fakes.
func newClient(g *genetlink.Conn, rt *netlink.Conn, dialEvents func() (eventConn, error)) *Client {
	return &Client{g: g, rt: rt, dialEvents: dialEvents, closeNS: func() error { return nil }}
}

// eventConn is the part of a *genetlink.Conn that a Subscription uses.
type eventConn interface {
	JoinGroup(group uint32) error
	Receive() ([]genetlink.Message, []netlink.Message, error)
	Close() error
}

// Close releases the connections.
func (c *Client) Close() error {
	return errors.Join(c.g.Close(), c.rt.Close(), c.closeNS())
}

// Family returns the kernel's generic netlink family "insane": its ID,
// version and multicast groups.
func (c *Client) Family() (genetlink.Family, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.family != nil {
		return *c.family, nil
	}
	f, err := c.g.GetFamily(uapi.GenlName)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return genetlink.Family{}, &NotLoadedError{Op: "find generic netlink family " + uapi.GenlName, Err: err}
		}
		return genetlink.Family{}, wrapError("find generic netlink family "+uapi.GenlName, err, false)
	}
	if f.Version < uapi.GenlVersion {
		return genetlink.Family{}, fmt.Errorf("generic netlink family %s has version %d, this client needs %d",
			uapi.GenlName, f.Version, uapi.GenlVersion)
	}
	c.family = &f
	return f, nil
}

// forgetFamily drops the cached family if it still has this ID.
func (c *Client) forgetFamily(id uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.family != nil && c.family.ID == id {
		c.family = nil
	}
}

// execute sends one insane generic netlink request.
func (c *Client) execute(op string, cmd uint8, flags netlink.HeaderFlags, attrs []byte) ([]genetlink.Message, error) {
	msg := genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: uapi.GenlVersion},
		Data:   attrs,
	}
	for attempt := 0; ; attempt++ {
		f, err := c.Family()
		if err != nil {
			return nil, err
		}
		msgs, err := c.g.Execute(msg, f.ID, netlink.Request|flags)
		if err == nil {
			return msgs, nil
		}
		// ENOENT is generic netlink's answer to an unknown family ID: the
		// module was unloaded since the family was looked up, and maybe
		// loaded again under another ID. The module itself answers
		// ENODEV for a missing device, never ENOENT.
		if errors.Is(err, unix.ENOENT) && attempt == 0 {
			c.forgetFamily(f.ID)
			continue
		}
		return nil, wrapError(op, err, true)
	}
}

// Devices returns every insane device of the client's network namespace.
func (c *Client) Devices() ([]*Device, error) {
	msgs, err := c.execute("dump devices", uapi.CmdGetDevice, netlink.Dump, nil)
	if err != nil {
		return nil, err
	}
	return parseDevices(msgs)
}

// Device returns the insane device called name.
func (c *Client) Device(name string) (*Device, error) {
	if name == "" {
		return nil, &Error{Op: "get device", Err: unix.ENODEV, Message: "empty device name"}
	}
	return c.device("get device "+name, uapi.DeviceAIfname, nlenc.Bytes(name))
}

// DeviceByIndex returns the insane device whose interface index is index.
func (c *Client) DeviceByIndex(index int) (*Device, error) {
	if index <= 0 || index > 1<<31-1 {
		return nil, &Error{Op: fmt.Sprintf("get device %d", index), Err: unix.ENODEV, Message: "invalid interface index"}
	}
	return c.device(fmt.Sprintf("get device %d", index), uapi.DeviceAIfindex, nlenc.Uint32Bytes(uint32(index)))
}

func (c *Client) device(op string, typ uint16, value []byte) (*Device, error) {
	b, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: typ, Data: value}})
	if err != nil {
		return nil, err
	}
	msgs, err := c.execute(op, uapi.CmdGetDevice, 0, b)
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("%s: kernel sent %d replies, want 1", op, len(msgs))
	}
	ds, err := parseDevices(msgs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return ds[0], nil
}

// ConfigureDevice applies cfg to the insane device called name: only what
// cfg sets is sent, and the kernel applies all of it or none.
func (c *Client) ConfigureDevice(name string, cfg Config) error {
	ae := netlink.NewAttributeEncoder()
	if err := encodeConfig(ae, name, cfg); err != nil {
		return err
	}
	b, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = c.execute("set device "+name, uapi.CmdSetDevice, netlink.Acknowledge, b)
	return err
}

// SetPolicy replaces the policy of the device called name.
func (c *Client) SetPolicy(name string, p Policy) error {
	return c.ConfigureDevice(name, Config{Policy: &p})
}
