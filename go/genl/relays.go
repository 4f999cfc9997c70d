package genl

import "github.com/insane-netdev/insane/go/genl/uapi"

// Constants of the seeded decision function (SplitMix64), from the uapi
// header's formula.
const (
	golden = 0x9e3779b97f4a7c15
	mix1   = 0xbf58476d1ce4e5b9
	mix2   = 0x94d049bb133111eb
)

// mix returns the 64-bit value that decides the fate of the k-th packet
// (k = 0, 1, 2, ...) handled since a percent policy with seed was set.
func mix(seed, k uint64) uint64 {
	x := seed + (k+1)*golden
	x = (x ^ (x >> 30)) * mix1
	x = (x ^ (x >> 27)) * mix2
	return x ^ (x >> 31)
}

// Relays is the kernel's seeded percent decision: whether the k-th packet
// (from 0) handled since a policy with this seed and percent, in millionths
// of a percent (as INSANE_POLICY_A_PERCENT: 80000000 relays 80 %), was set
// is relayed. This is the function documented in the uapi header, bit for
// bit.
func Relays(seed, k uint64, percentUnits uint32) bool {
	return relaysDraw(uint32(mix(seed, k)>>32), percentUnits)
}

// relaysDraw is the comparison the kernel makes for a 32-bit draw: the high
// half of mix for a seeded policy, a random value for an unseeded one.
func relaysDraw(draw uint32, percent uint32) bool {
	return uint64(draw)*uapi.PercentMax < uint64(percent)<<32
}
