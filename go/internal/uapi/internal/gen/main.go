// Command gen writes the Go constants of package uapi from the uapi header.
//
// Usage: go run ./internal/gen -header PATH -o FILE
package main

import (
	"flag"
	"log"
	"os"

	"github.com/insane-netdev/insane/go/internal/uapi/internal/cheader"
)

func main() {
	header := flag.String("header", "../../../kernel/include/uapi/linux/insane.h", "uapi header to read")
	out := flag.String("o", "zz_generated.go", "Go file to write")
	pkg := flag.String("pkg", "uapi", "Go package name")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gen: ")

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
