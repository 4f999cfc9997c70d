package uapi

import (
	"bytes"
	"os"
	"testing"
)

func TestSameAsClientConstants(t *testing.T) {
	mine, err := os.ReadFile("zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := os.ReadFile("../../../../go/internal/uapi/zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mine, theirs) {
		t.Fatal("tests/vm/internal/uapi/zz_generated.go differs from go/internal/uapi's: run go generate ./tests/vm/internal/uapi")
	}
}
