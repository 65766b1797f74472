package containerd

// ShimName is the runc shim's program, which the runtime bundle carries (containerd's name for
// the runtime type io.containerd.runc.v2; the CRI runtime's runtime_path points at it). It is
// upstream's own small binary rather than a role of ketch, because containerd starts one per pod: a
// 160 MB ketch re-executed per pod costs about 0.1 s of CPU to initialise and 20 MiB of
// memory for each pod.
const ShimName = "containerd-shim-runc-v2"
