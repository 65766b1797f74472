# ketch's node image: `ketch server` or `ketch agent` as a container's first process, for
# throwaway clusters in Docker (docs/docker.md). It is FROM scratch, so it builds with no
# registry: `make image` assembles the context (internal/nodeimage: the ketch binary, iptables
# and mount with exactly the libraries they load, CA certificates, /etc/passwd) and builds this
# file against it with docker, podman or buildah.
FROM scratch
COPY rootfs/ /
ENV PATH=/bin:/usr/sbin:/usr/bin
# Everything a node keeps (datastore, certificates, containerd's images and snapshots, the
# kubelet's pods and volumes, pod logs) is below the data dir; it must be a volume, not the
# container's own overlay file system, which containerd's overlay snapshotter cannot stack on.
# /run is expected as a tmpfs (--tmpfs /run): sockets and containerd's state, gone at restart.
VOLUME ["/var/lib/ketch"]
ENTRYPOINT ["/bin/ketch"]
CMD ["agent"]
