//go:build !amd64 && !arm64 && !arm

package bundle

import "embed"

// No bundle is built for this architecture: Embedded returns ErrNotBuilt.
var embedded embed.FS

const embeddedDir = "bin/none"
