//go:build amd64

package images

import "embed"

// The programs the Makefile builds for linux/amd64: the pause binary (pause.go) and the addon
// program (addons.go). Each architecture has its own directories, so that a release builds
// them side by side.

//go:embed all:pause/linux_amd64
var pauseDir embed.FS

//go:embed all:addons/linux_amd64
var addonsDir embed.FS

const platformDir = "linux_amd64"
