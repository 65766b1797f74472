//go:build arm && arm.7

package images

// armVariant is the OCI platform variant of this arm build's GOARM (DefaultPlatform), from the
// arm.N build tags the go command sets for GOARM=N and below. GOARM=7, as the Makefile builds arm (release).
const armVariant = "v7"
