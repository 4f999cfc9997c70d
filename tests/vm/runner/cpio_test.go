package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is an entry read back from a newc archive.
type cpioEntry struct {
	name         string
	mode         uint32
	data         string
	rmajor, rmin uint32
}

// readCpio parses a newc archive independently of the writer.
func readCpio(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+6+8*i+8]), 16, 32)
		if err != nil {
			t.Fatalf("offset %d: field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) {
			t.Fatalf("archive ends at %d without a trailer", off)
		}
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("offset %d: magic %q", off, b[off:off+6])
		}
		mode, size, rmaj, rmin, namesize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+namesize-1])
		if b[off+110+namesize-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", name)
		}
		dataOff := align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			if len(b)%4 != 0 {
				t.Errorf("archive length %d is not a multiple of 4", len(b))
			}
			return out
		}
		out = append(out, cpioEntry{name: name, mode: mode, data: string(b[dataOff : dataOff+size]), rmajor: rmaj, rmin: rmin})
		off = align(dataOff + size)
	}
}

func TestCpioWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &cpioWriter{w: &buf}
	steps := []error{
		w.Dir("etc", 0o755),
		w.File("etc/a", 0o644, 5, strings.NewReader("hello, and more")),
		w.File("etc/empty", 0o600, 0, strings.NewReader("")),
		w.Symlink("bin", "usr/bin"),
		w.CharDev("console", 0o600, 5, 1),
		w.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got := readCpio(t, buf.Bytes())
	want := []cpioEntry{
		{name: "etc", mode: modeDir | 0o755},
		{name: "etc/a", mode: modeFile | 0o644, data: "hello"},
		{name: "etc/empty", mode: modeFile | 0o600},
		{name: "bin", mode: modeSymlink | 0o777, data: "usr/bin"},
		{name: "console", mode: modeChar | 0o600, rmajor: 5, rmin: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read back\n%v\nwant\n%v", got, want)
	}
}

func TestCpioWriterShortFile(t *testing.T) {
	w := &cpioWriter{w: io.Discard}
	if err := w.File("x", 0o644, 10, strings.NewReader("abc")); err == nil {
		t.Error("a file shorter than its header size was accepted")
	}
}

func TestArchive(t *testing.T) {
	a := newArchive()
	steps := []error{
		a.Bytes("/usr/bin/tool", []byte("#!/bin/bash\n"), 0o755),
		a.Symlink("/bin", "usr/bin"),
		a.Bytes("/etc/vmtest/run", []byte("TestX\n"), 0o644),
		a.CharDev("/dev/console", 0o600, 5, 1),
		a.Dir("/usr/bin"),
		// The same file twice is fine, different contents are not.
		a.Bytes("/etc/vmtest/run", []byte("TestX\n"), 0o644),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := a.Bytes("/etc/vmtest/run", []byte("TestY\n"), 0o644); err == nil {
		t.Error("a second, different /etc/vmtest/run was accepted")
	}
	if err := a.Bytes("/usr/bin/tool/x", nil, 0o644); err == nil {
		t.Error("a file under a file was accepted")
	}
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range readCpio(t, buf.Bytes()) {
		names = append(names, e.name)
	}
	want := "bin dev dev/console etc etc/vmtest etc/vmtest/run usr usr/bin usr/bin/tool"
	if strings.Join(names, " ") != want {
		t.Errorf("entries %q, want parents first: %q", strings.Join(names, " "), want)
	}
}
