//go:build arm && arm.6 && !arm.7

package images

// armVariant is the OCI platform variant of this arm build's GOARM (DefaultPlatform), from the
// arm.N build tags the go command sets for GOARM=N and below. GOARM=6.
const armVariant = "v6"
