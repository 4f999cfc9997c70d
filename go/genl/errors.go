package genl

import (
	"errors"
	"fmt"
	"os"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ErrNotLoaded is matched (errors.Is) by every error caused by the insane
// kernel module not being loaded. Such errors also match os.ErrNotExist.
var ErrNotLoaded = errors.New("insane kernel module not loaded")

// NotLoadedError reports that the kernel knows neither the generic netlink
// family nor the link kind "insane": the module is not loaded and could not
// be loaded on demand. The fix is "modprobe insane".
type NotLoadedError struct {
	// Op is what was being done.
	Op string
	// Err is the kernel's answer.
	Err error
}

func (e *NotLoadedError) Error() string {
	return fmt.Sprintf("%s: %v (modprobe insane loads it)", e.Op, ErrNotLoaded)
}

// Unwrap returns the kernel's answer.
func (e *NotLoadedError) Unwrap() error { return e.Err }

// Is matches ErrNotLoaded and os.ErrNotExist.
func (e *NotLoadedError) Is(target error) bool {
	return target == ErrNotLoaded || target == os.ErrNotExist
}

// An Error is the kernel's refusal of a request.
type Error struct {
	// Op is the request, such as "set device ins0".
	Op string
	// Err is the error number (a unix.Errno) or another low-level error.
	Err error
	// Message is the kernel's extended acknowledgement message, if it sent
	// one: the reason for the refusal in words.
	Message string

	// missing marks errors that mean "no such insane device" although
	// their errno alone does not.
	missing bool
}

func (e *Error) Error() string {
	s := e.Op + ": " + e.Err.Error()
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns Err, so errors.Is(err, unix.EINVAL) and errors.Is(err,
// os.ErrPermission) work.
func (e *Error) Unwrap() error { return e.Err }

// Is makes ENODEV, and EOPNOTSUPP for a device that is not an insane
// device, match os.ErrNotExist.
func (e *Error) Is(target error) bool {
	if target != os.ErrNotExist {
		return false
	}
	return e.missing || errors.Is(e.Err, unix.ENODEV) || errors.Is(e.Err, unix.ENOENT)
}

// wrapError turns a netlink error into an *Error, keeping the extack
// message. deviceOp tells that the request named an insane device, so that
// EOPNOTSUPP means "not an insane device".
func wrapError(op string, err error, deviceOp bool) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Err: err}
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		e.Err, e.Message = oe.Err, oe.Message
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			e.Err = se.Err
		}
	}
	if deviceOp && errors.Is(e.Err, unix.EOPNOTSUPP) {
		e.missing = true
	}
	return e
}

// notInsaneError reports a link that exists but is of another kind.
type notInsaneError struct {
	name, kind string
}

func (e *notInsaneError) Error() string {
	if e.kind == "" {
		return fmt.Sprintf("%s is not an insane device", e.name)
	}
	return fmt.Sprintf("%s is a %s device, not an insane device", e.name, e.kind)
}

func (e *notInsaneError) Is(target error) bool { return target == os.ErrNotExist }
