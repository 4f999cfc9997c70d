// Command eventrun runs a command as one test and writes Go's test event
// stream for it (JSON lines, go doc cmd/test2json) on standard output: the
// guest init of the VM tests runs tests/vm/scripts/*.sh and the debug run's
// kmemleak check through it, so that the host decodes one kind of stream for
// them and for the Go tests.
//
// Usage:
//
//	eventrun -p PACKAGE -name TEST -- COMMAND [ARG...]
//
// Each line the command writes on its standard output or standard error
// becomes an output event of TEST; the test passes if the command exits with
// status 0. eventrun exits with the command's status.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/insane-netdev/insane/tests/vm/runner/testevent"
)

func main() {
	pkg := flag.String("p", "", "package reported in the events")
	name := flag.String("name", "", "test name reported in the events")
	flag.Parse()
	if *name == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: eventrun -p PACKAGE -name TEST -- COMMAND [ARG...]")
		os.Exit(2)
	}
	status, err := run(os.Stdout, *pkg, *name, flag.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "eventrun: %v\n", err)
		os.Exit(2)
	}
	os.Exit(status)
}

// run runs args as test name and returns the command's exit status.
func run(out io.Writer, pkg, name string, args []string) (int, error) {
	w := testevent.NewWriter(out, pkg, name, nil)
	if err := w.Run(); err != nil {
		return 0, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = pw, pw
	startErr := cmd.Start()
	pw.Close()
	copyErr := copyLines(w, pr)
	pr.Close()
	status := 0
	if startErr != nil {
		status = 127
		if err := w.Output(fmt.Sprintf("    %v\n", startErr)); err != nil {
			return 0, err
		}
	} else if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return 0, err
		}
		status = ee.ExitCode()
		if status < 0 {
			status = 128 // killed by a signal
		}
		if err := w.Output(fmt.Sprintf("    %v\n", err)); err != nil {
			return 0, err
		}
	}
	if copyErr != nil {
		return 0, copyErr
	}
	return status, w.End(status == 0)
}

// copyLines writes what r delivers as output events, a line at a time. A
// last line without a newline gets one, so that what eventrun adds starts a
// line of its own.
func copyLines(w *testevent.Writer, r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line != "" {
			line += "\n"
		}
		if werr := w.Output(line); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
