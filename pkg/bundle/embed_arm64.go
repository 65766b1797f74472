//go:build arm64

package bundle

import "embed"

// The bundle build/bundle.mk makes for linux/arm64; see the package doc.
//
//go:embed all:bin/linux_arm64
var embedded embed.FS

const embeddedDir = "bin/linux_arm64"
