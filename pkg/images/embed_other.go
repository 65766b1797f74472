//go:build !amd64 && !arm64 && !arm

package images

import "embed"

// No pause binary or addon program is built for this architecture: PauseImage and the addon
// image return ErrNoPauseBinary and ErrNoAddonsBinary.
var pauseDir, addonsDir embed.FS

const platformDir = "linux_none"
