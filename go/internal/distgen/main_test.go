package main

import (
	"bytes"
	"math"
	"os"
	"testing"
)

// The checked-in outputs are the generator's: a change to one without the
// other fails here.
func TestCheckedIn(t *testing.T) {
	tab := Generate()
	c, err := os.ReadFile("../../../kernel/dist_tables.h")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c, tab.C()) {
		t.Error("kernel/dist_tables.h differs from the generator's output: run go generate ./go/genl")
	}
	g, err := os.ReadFile("../../genl/zz_dist.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := tab.Go("genl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, want) {
		t.Error("go/genl/zz_dist.go differs from the generator's output: run go generate ./go/genl")
	}
}

// The tables are what they say: monotone, the normal symmetric, the Pareto
// starting at its minimum, the CDF inverse to the inverse CDF.
func TestShape(t *testing.T) {
	tab := Generate()
	for i := 1; i < Knots; i++ {
		if tab.Normal[i] <= tab.Normal[i-1] || tab.Pareto[i] <= tab.Pareto[i-1] || tab.NormalCDF[i] < tab.NormalCDF[i-1] {
			t.Fatalf("not increasing at knot %d", i)
		}
	}
	for i := 0; i < Knots; i++ {
		if d := tab.Normal[i] + tab.Normal[Knots-1-i]; d < -1 || d > 1 {
			t.Fatalf("normal not symmetric at %d: %d", i, d)
		}
	}
	// 2 E[z | u > 1 - 1/4096] - Phi^-1(1 - 1/4096) = 2 * 3.6621 - 3.4917.
	if got := tab.Normal[Knots-1]; got < 261500 || got > 261650 {
		t.Errorf("normal's last knot %d", got)
	}
	if got, want := tab.Pareto[0], int32(math.Round(-65536/math.Sqrt(3))); got != want {
		t.Errorf("pareto's first knot %d, want %d", got, want)
	}
	// Phi(0) = 1/2, at the middle knot.
	if got := tab.NormalCDF[(Knots-1)/2]; got != 1<<31 {
		t.Errorf("Phi(0) = %d", got)
	}
	// The mean and variance of the interpolated draws, by quadrature over u:
	// the normal's close to 0 and 1; the Pareto's mean close to 0 and its
	// variance a little below 1 (its tail beyond the last knot is cut).
	moments := func(tab *[Knots]int32) (m, v float64) {
		const n = 1 << 20
		for k := 0; k < n; k++ {
			u := uint32(k)<<12 | 1<<11
			i, f := u>>20, int64(u&0xfffff)
			z := float64(int64(tab[i])+((int64(tab[i+1])-int64(tab[i]))*f>>20)) / 65536
			m += z
			v += z * z
		}
		m /= n
		return m, v/n - m*m
	}
	if m, v := moments(&tab.Normal); math.Abs(m) > 1e-3 || math.Abs(v-1) > 3e-3 {
		t.Errorf("interpolated normal: mean %g, variance %g", m, v)
	}
	if m, v := moments(&tab.Pareto); math.Abs(m) > 2e-3 || v < 0.9 || v > 1.01 {
		t.Errorf("interpolated Pareto: mean %g, variance %g", m, v)
	} else {
		t.Logf("interpolated Pareto: mean %.5f, variance %.5f", m, v)
	}
}
