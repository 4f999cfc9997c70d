// Package uapi holds the numbers of the insane kernel interface, generated
// from the uapi header kernel/include/uapi/linux/insane.h, which is their
// single source of truth. It is the one Go copy of them: the client
// (package genl), the CLI and the VM tests all import it.
//
// The constants keep the header's names without the INSANE_ prefix, in
// CamelCase: INSANE_DEVICE_A_IFNAME is DeviceAIfname. uapi_test.go fails on
// any drift between this package and the header, in both directions.
package uapi

//go:generate go run ../../internal/uapigen -header ../../../kernel/include/uapi/linux/insane.h -o zz_generated.go
