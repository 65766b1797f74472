//go:build arm

package bundle

import "embed"

// The bundle build/bundle.mk makes for linux/arm; see the package doc.
//
//go:embed all:bin/linux_arm
var embedded embed.FS

const embeddedDir = "bin/linux_arm"
