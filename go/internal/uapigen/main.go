// Command uapigen writes, from the uapi header, the Go constants of package
// github.com/insane-netdev/insane/go/genl/uapi (-o) or the Stats type and
// the counter table of package genl (-counters); go generate runs it (see
// go/genl/uapi/uapi.go and go/genl/counters.go).
//
// Usage: go run ./go/internal/uapigen -header PATH [-counters -lists PATH] -o FILE [-pkg NAME]
//
// With -counters, -lists is kernel/counters.h, whose lists give each counter
// its group (relayed, drop cause, gauge or mark) and must agree with the
// header's enum insane_stats_attr.
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
	lists := flag.String("lists", "kernel/counters.h", "with -counters, the counter lists of the module and the ip plugin")
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
		var ls []byte
		if ls, err = os.ReadFile(*lists); err != nil {
			log.Fatal(err)
		}
		code, err = cheader.GenerateCounters(pkgOr(*pkg, "genl"), uapiImport, source, string(src), string(ls))
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
