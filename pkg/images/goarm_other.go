//go:build !arm

package images

// armVariant is the OCI platform variant of this arm build's GOARM (DefaultPlatform), from the
// arm.N build tags the go command sets for GOARM=N and below. Not an arm build: no variant.
const armVariant = ""
