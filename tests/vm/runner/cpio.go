package main

import (
	"fmt"
	"io"
)

// cpioWriter writes a cpio archive in the "newc" format that the kernel
// unpacks as an initramfs: a 110-byte ASCII header, the NUL-terminated name,
// padding to 4 bytes, the data, padding to 4 bytes; then a TRAILER!!! entry.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	off int64
	err error
}

// cpio mode bits (the same as stat's).
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeChar    = 0o020000
)

type cpioHeader struct {
	name         string
	mode         uint32 // type and permission bits
	size         int64
	nlink        uint32
	rmajor, rmin uint32 // device numbers of a device node
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.off += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.off % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) header(h cpioHeader) {
	c.ino++
	nlink := h.nlink
	if nlink == 0 {
		nlink = 1
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, h.mode, 0, 0, nlink, 0, h.size, 0, 0, h.rmajor, h.rmin, len(h.name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(h.name))
	c.write([]byte{0})
	c.pad()
}

// Dir adds a directory. Parents must have been added before.
func (c *cpioWriter) Dir(name string, perm uint32) error {
	c.header(cpioHeader{name: name, mode: modeDir | perm, nlink: 2})
	return c.err
}

// File adds a regular file of size bytes read from r.
func (c *cpioWriter) File(name string, perm uint32, size int64, r io.Reader) error {
	c.header(cpioHeader{name: name, mode: modeFile | perm, size: size})
	if c.err != nil {
		return c.err
	}
	n, err := io.Copy(c.w, io.LimitReader(r, size))
	c.off += n
	if err != nil {
		c.err = err
		return err
	}
	if n != size {
		c.err = fmt.Errorf("cpio: %s: wrote %d bytes, header says %d", name, n, size)
		return c.err
	}
	c.pad()
	return c.err
}

// Symlink adds a symbolic link to target.
func (c *cpioWriter) Symlink(name, target string) error {
	c.header(cpioHeader{name: name, mode: modeSymlink | 0o777, size: int64(len(target))})
	c.write([]byte(target))
	c.pad()
	return c.err
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) error {
	c.header(cpioHeader{name: name, mode: modeChar | perm, rmajor: major, rmin: minor})
	return c.err
}

// Close writes the trailer. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	c.header(cpioHeader{name: "TRAILER!!!"})
	return c.err
}
