package genl

//go:generate go run ../internal/distgen -c ../../kernel/dist_tables.h -go zz_dist.go

// The delay distributions' tables (zz_dist.go) are generated with the
// kernel's (kernel/dist_tables.h) by one program, go/internal/distgen; see
// docs/design-delay.md, "Draws". The predictor of delays reads them.
var _ = [...]any{distNormal, distPareto, distNormalCDF}
