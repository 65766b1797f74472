//go:build amd64

package bundle

import "embed"

// The bundle build/bundle.mk makes for linux/amd64; see the package doc.
//
//go:embed all:bin/linux_amd64
var embedded embed.FS

const embeddedDir = "bin/linux_amd64"
