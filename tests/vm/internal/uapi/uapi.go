// Package uapi gives the VM tests the numbers of the insane kernel
// interface. go/internal/uapi is internal to go/, so its generated file is
// generated here again from the same header; uapi_test.go fails when the two
// differ, and go/internal/uapi's own tests fail when that one drifts from
// the header.
package uapi

//go:generate go run ../../../../go/internal/uapi/internal/gen -header ../../../../kernel/include/uapi/linux/insane.h -o zz_generated.go -pkg uapi
