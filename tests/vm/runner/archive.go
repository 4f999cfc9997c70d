package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// entry is one file of the guest's root file system.
type entry struct {
	kind   uint32 // modeDir, modeFile, modeSymlink or modeChar
	perm   uint32
	host   string // modeFile: copy this host file (symlinks followed)
	data   []byte // modeFile: or these bytes, when host is empty
	target string // modeSymlink
	major  uint32 // modeChar
	minor  uint32
}

// archive is the initramfs being assembled, keyed by absolute guest path.
// Parent directories are created as needed, and the archive is written in
// path order so that every directory precedes its contents.
type archive struct {
	files map[string]*entry
}

func newArchive() *archive { return &archive{files: make(map[string]*entry)} }

func cleanGuest(p string) string { return path.Clean("/" + p) }

func (a *archive) put(p string, e *entry) error {
	p = cleanGuest(p)
	if p == "/" {
		return fmt.Errorf("initramfs: cannot replace /")
	}
	if old, ok := a.files[p]; ok {
		if old.kind == modeDir && e.kind == modeDir {
			return nil
		}
		if old.kind != e.kind || old.host != e.host || old.target != e.target || string(old.data) != string(e.data) {
			return fmt.Errorf("initramfs: %s added twice with different contents", p)
		}
		return nil
	}
	if err := a.Dir(path.Dir(p)); err != nil {
		return err
	}
	a.files[p] = e
	return nil
}

// Dir adds a directory and its parents.
func (a *archive) Dir(p string) error {
	p = cleanGuest(p)
	if p == "/" {
		return nil
	}
	if old, ok := a.files[p]; ok {
		if old.kind != modeDir {
			return fmt.Errorf("initramfs: %s is not a directory", p)
		}
		return nil
	}
	return a.put(p, &entry{kind: modeDir, perm: 0o755})
}

// File adds a copy of the host file at guest path p.
func (a *archive) File(host, p string, perm uint32) error {
	real, err := filepath.EvalSymlinks(host)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return a.put(p, &entry{kind: modeFile, perm: perm, host: real})
}

// Bytes adds a file with the given contents.
func (a *archive) Bytes(p string, data []byte, perm uint32) error {
	return a.put(p, &entry{kind: modeFile, perm: perm, data: data})
}

// Symlink adds a symbolic link at p pointing to target.
func (a *archive) Symlink(p, target string) error {
	return a.put(p, &entry{kind: modeSymlink, perm: 0o777, target: target})
}

// CharDev adds a character device node.
func (a *archive) CharDev(p string, perm, major, minor uint32) error {
	return a.put(p, &entry{kind: modeChar, perm: perm, major: major, minor: minor})
}

// Tree copies the host directory tree root to guest directory p, keeping
// symbolic links as links.
func (a *archive) Tree(root, p string) error {
	return filepath.WalkDir(root, func(host string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, host)
		if err != nil {
			return err
		}
		guest := path.Join(p, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return a.Dir(guest)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(host)
			if err != nil {
				return err
			}
			return a.Symlink(guest, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return a.File(host, guest, uint32(info.Mode().Perm()))
		default:
			return fmt.Errorf("initramfs: %s: unsupported file type", host)
		}
	})
}

// Has reports whether guest path p is in the archive.
func (a *archive) Has(p string) bool {
	_, ok := a.files[cleanGuest(p)]
	return ok
}

// WriteTo writes the archive as a newc cpio stream.
func (a *archive) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.files))
	for p := range a.files {
		names = append(names, p)
	}
	sort.Strings(names)
	cw := &cpioWriter{w: w}
	for _, p := range names {
		e := a.files[p]
		name := strings.TrimPrefix(p, "/")
		var err error
		switch e.kind {
		case modeDir:
			err = cw.Dir(name, e.perm)
		case modeSymlink:
			err = cw.Symlink(name, e.target)
		case modeChar:
			err = cw.CharDev(name, e.perm, e.major, e.minor)
		case modeFile:
			if e.host == "" {
				err = cw.File(name, e.perm, int64(len(e.data)), strings.NewReader(string(e.data)))
				break
			}
			var f *os.File
			f, err = os.Open(e.host)
			if err != nil {
				break
			}
			var info os.FileInfo
			if info, err = f.Stat(); err == nil {
				err = cw.File(name, e.perm, info.Size(), f)
			}
			f.Close()
		}
		if err != nil {
			return cw.off, fmt.Errorf("initramfs: %s: %w", p, err)
		}
	}
	err := cw.Close()
	return cw.off, err
}
