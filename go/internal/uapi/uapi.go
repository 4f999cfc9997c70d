// Package uapi holds the numbers of the insane kernel interface, generated
// from the uapi header kernel/include/uapi/linux/insane.h, which is their
// single source of truth, and the seeded percent decision function that the
// header documents.
//
// The constants keep the header's names without the INSANE_ prefix, in
// CamelCase: INSANE_DEVICE_A_IFNAME is DeviceAIfname. uapi_test.go fails on
// any drift between this package and the header.
package uapi

//go:generate go run ./internal/gen -header ../../../kernel/include/uapi/linux/insane.h -o zz_generated.go

// Constants of the seeded decision function (SplitMix64).
const (
	golden = 0x9e3779b97f4a7c15
	mix1   = 0xbf58476d1ce4e5b9
	mix2   = 0x94d049bb133111eb
)

// Mix returns the 64-bit value that decides the fate of the k-th packet
// (k = 0, 1, 2, ...) handled since a percent policy with seed was set.
func Mix(seed, k uint64) uint64 {
	x := seed + (k+1)*golden
	x = (x ^ (x >> 30)) * mix1
	x = (x ^ (x >> 27)) * mix2
	return x ^ (x >> 31)
}

// Relays reports whether the k-th packet (counting from 0) handled since a
// percent policy with the given seed was set is relayed. percent is in
// millionths of a percent, as INSANE_POLICY_A_PERCENT: 80000000 relays 80 %.
// This is the function documented in the uapi header, bit for bit.
func Relays(seed, k uint64, percent uint32) bool {
	return RelaysDraw(uint32(Mix(seed, k)>>32), percent)
}

// RelaysDraw is the comparison the kernel makes for a 32-bit draw: the high
// half of Mix for a seeded policy, a random value for an unseeded one.
func RelaysDraw(draw uint32, percent uint32) bool {
	return uint64(draw)*PercentMax < uint64(percent)<<32
}
