// Command uapigen writes, from the uapi header, the Go constants of package
// github.com/insane-netdev/insane/go/genl/uapi (-o) or the Stats type and
// the counter table of package genl (-counters); go generate runs it (see
// go/genl/uapi/uapi.go and go/genl/counters.go).
//
// Usage: go run ./go/internal/uapigen -header PATH [-counters] -o FILE [-pkg NAME]
package main

import (
	"flag"
	"log"
	"os"

	"github.com/insane-netdev/insane/go/internal/cheader"
)

// uapiImport is the import path of the generated constants, which the
// counter table refers to.
const uapiImport = "github.com/insane-netdev/insane/go/genl/uapi"

func main() {
	header := flag.String("header", "kernel/include/uapi/linux/insane.h", "uapi header to read")
	out := flag.String("o", "zz_generated.go", "Go file to write")
	counters := flag.Bool("counters", false, "write the Stats type and counter table instead of the constants")
	pkg := flag.String("pkg", "", "Go package name (default uapi, or genl with -counters)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("uapigen: ")

	src, err := os.ReadFile(*header)
	if err != nil {
		log.Fatal(err)
	}
	const source = "include/uapi/linux/insane.h"
	var code []byte
	if *counters {
		code, err = cheader.GenerateCounters(pkgOr(*pkg, "genl"), uapiImport, source, string(src))
	} else {
		code, err = cheader.Generate(pkgOr(*pkg, "uapi"), source, "INSANE_", string(src))
	}
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil {
		log.Fatal(err)
	}
}

func pkgOr(pkg, def string) string {
	if pkg == "" {
		return def
	}
	return pkg
}
