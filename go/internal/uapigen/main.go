// Command uapigen writes the Go constants of package
// github.com/insane-netdev/insane/go/genl/uapi from the uapi header; go
// generate runs it (see go/genl/uapi/uapi.go).
//
// Usage: go run ./go/internal/uapigen -header PATH -o FILE [-pkg NAME]
package main

import (
	"flag"
	"log"
	"os"

	"github.com/insane-netdev/insane/go/internal/cheader"
)

func main() {
	header := flag.String("header", "kernel/include/uapi/linux/insane.h", "uapi header to read")
	out := flag.String("o", "zz_generated.go", "Go file to write")
	pkg := flag.String("pkg", "uapi", "Go package name")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("uapigen: ")

	src, err := os.ReadFile(*header)
	if err != nil {
		log.Fatal(err)
	}
	code, err := cheader.Generate(*pkg, "include/uapi/linux/insane.h", "INSANE_", string(src))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil {
		log.Fatal(err)
	}
}
