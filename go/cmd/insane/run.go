package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/insane-netdev/insane/go/genl"
	"github.com/insane-netdev/insane/go/internal/policyparse"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the kernel or the system refused
	exitUsage = 2 // the command line does not parse
)

// backend is what the CLI needs of a genl.Client; tests provide their own.
type backend interface {
	Devices() ([]*genl.Device, error)
	Device(name string) (*genl.Device, error)
	AddLink(name, lower string, p *genl.Policy) error
	AddLinkRx(name, lower string, p, rx *genl.Policy) error
	DeleteLink(name string) error
	ConfigureDevice(name string, cfg genl.Config) error
	// Monitor subscribes to events: the channel closes when ctx is done or
	// on failure, after which errf tells which.
	Monitor(ctx context.Context) (events <-chan genl.Event, errf func() error, err error)
	Close() error
}

type dialer func(netns string) (backend, error)

type kernel struct{ *genl.Client }

func (k kernel) Monitor(ctx context.Context) (<-chan genl.Event, func() error, error) {
	s, err := k.Subscribe(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.Events(), s.Err, nil
}

func dialKernel(netns string) (backend, error) {
	c, err := genl.Dial(&genl.Options{NetNSPath: netns})
	if err != nil {
		return nil, err
	}
	return kernel{c}, nil
}

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, dial dialer, now func() time.Time) int {
	cmd, err := parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "insane: %v; try 'insane help'\n", err)
		return exitUsage
	}
	switch cmd.verb {
	case verbHelp:
		fmt.Fprint(stdout, usageText)
		return exitOK
	case verbLinkHelp:
		fmt.Fprint(stdout, linkUsageText)
		return exitOK
	}
	b, err := dial(cmd.opts.netns)
	if err != nil {
		if cmd.opts.netns != "" && errors.Is(err, os.ErrPermission) {
			fmt.Fprintf(stderr, "insane: %v (entering a network namespace needs CAP_SYS_ADMIN)\n", err)
			return exitError
		}
		return fail(stderr, err)
	}
	defer b.Close()
	if err := execute(ctx, cmd, b, stdout, now); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "insane: %v; try 'insane help'\n", err)
			return exitUsage
		}
		return fail(stderr, err)
	}
	return exitOK
}

// fail prints err as one line and returns exitError.
func fail(stderr io.Writer, err error) int {
	msg := err.Error()
	switch {
	case errors.Is(err, genl.ErrNotLoaded):
		msg = "the insane kernel module is not loaded; load it with 'modprobe insane'"
	case errors.Is(err, os.ErrPermission):
		msg += " (CAP_NET_ADMIN is needed)"
	}
	fmt.Fprintf(stderr, "insane: %s\n", strings.ReplaceAll(msg, "\n", " "))
	return exitError
}

func execute(ctx context.Context, cmd *command, b backend, stdout io.Writer, now func() time.Time) error {
	switch cmd.verb {
	case verbShow:
		var ds []*genl.Device
		if cmd.name != "" {
			d, err := b.Device(cmd.name)
			if err != nil {
				return err
			}
			ds = []*genl.Device{d}
		} else {
			var err error
			if ds, err = b.Devices(); err != nil {
				return err
			}
		}
		if cmd.opts.json {
			return writeJSON(stdout, ds, cmd.opts.stats, cmd.opts.pretty)
		}
		return writeText(stdout, ds, cmd.opts.stats)
	case verbAdd:
		p, rx := cmd.policy, cmd.rxPolicy
		if p != nil && cmd.seed != nil {
			p.Seed = cmd.seed
		}
		if rx != nil && cmd.rxSeed != nil {
			rx.Seed = cmd.rxSeed
		}
		if rx != nil {
			return b.AddLinkRx(cmd.name, cmd.lower, p, rx)
		}
		return b.AddLink(cmd.name, cmd.lower, p)
	case verbDel:
		return b.DeleteLink(cmd.name)
	case verbSet:
		cfg := genl.Config{Lower: cmd.lower, Detach: cmd.nolower, ResetStats: cmd.resetStats, Policy: cmd.policy,
			RxPolicy: cmd.rxPolicy, RxOff: cmd.rxOff}
		var cur *genl.Device
		current := func() (*genl.Device, error) {
			if cur != nil {
				return cur, nil
			}
			d, err := b.Device(cmd.name)
			cur = d
			return d, err
		}
		if cmd.seed != nil {
			if cfg.Policy == nil {
				// A policy is complete: keep the current percentage.
				d, err := current()
				if err != nil {
					return err
				}
				if policyparse.CheckSeed(&d.Policy, cmd.seed) != nil {
					return fmt.Errorf("%s is in mode %s: a seed goes with %s", cmd.name, d.Policy.Mode, policyparse.SeedModes)
				}
				p := d.Policy
				cfg.Policy = &p
			}
			cfg.Policy.Seed = cmd.seed
		}
		if cmd.rxSeed != nil {
			if cfg.RxPolicy == nil {
				d, err := current()
				if err != nil {
					return err
				}
				if d.RxPolicy == nil || policyparse.CheckSeed(d.RxPolicy, cmd.rxSeed) != nil {
					mode := "off"
					if d.RxPolicy != nil {
						mode = "mode " + d.RxPolicy.Mode.String()
					}
					return fmt.Errorf("%s's receive policy is %s: a seed goes with %s", cmd.name, mode, policyparse.SeedModes)
				}
				p := *d.RxPolicy
				cfg.RxPolicy = &p
			}
			cfg.RxPolicy.Seed = cmd.rxSeed
		}
		return b.ConfigureDevice(cmd.name, cfg)
	case verbMonitor:
		events, errf, err := b.Monitor(ctx)
		if err != nil {
			return err
		}
		for ev := range events {
			if err := writeEvent(stdout, ev, now(), cmd.opts); err != nil {
				return err
			}
		}
		return errf()
	}
	return fmt.Errorf("internal error: verb %d", cmd.verb)
}
