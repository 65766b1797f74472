#!/bin/sh
# Uninstalls the ketch service @NAME@ that install.sh installed, and what it started: it stops and
# removes the service, runs ketch-killall.sh for the node's dirs (processes, containers, mounts,
# links, iptables chains, cgroups), and removes the node's data dir, its env file and this script.
# The binary, ketch-killall.sh, the kubectl/ctr/crictl links install.sh made and /etc/ketch go
# with the last ketch service on the host. install.sh fills in the @...@ fields.
set -u

name='@NAME@'
init='@INIT@'
bin_dir='@BIN_DIR@'
data_dir='@DATA_DIR@'
run_dir='@RUN_DIR@'
env_file='@ENV_FILE@'
service_files='@SERVICE_FILES@'
links='@LINKS@'

[ "$(id -u)" = 0 ] || { echo "$name-uninstall: run as root" >&2; exit 1; }

say() { echo "$name-uninstall: $*"; }

say "stopping and removing the service $name ($init)"
case $init in
  systemd)
    systemctl disable --now "$name" >/dev/null 2>&1
    ;;
  openrc)
    rc-service "$name" stop >/dev/null 2>&1
    rc-update del "$name" default >/dev/null 2>&1
    ;;
esac

# What the node started outlives the service (KillMode=process): stop it and clean up.
if [ -x "$bin_dir/ketch-killall.sh" ]; then
  KETCH_DATA_DIR=$data_dir KETCH_RUN_DIR=$run_dir "$bin_dir/ketch-killall.sh"
fi

# shellcheck disable=SC2086 # lists of paths without spaces (install.sh refuses others)
rm -f -- $service_files "$env_file"
[ "$init" = systemd ] && systemctl daemon-reload >/dev/null 2>&1

say "removing the data dir $data_dir"
# The data dir's mounts went with killall; one left (a busy volume) must not take the files under
# it with the data dir. A data dir that is itself a mount (a disk for the node) is emptied.
if awk -v d="$data_dir/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
  say "something is still mounted under $data_dir; remove it by hand once unmounted"
elif awk -v d="$data_dir" '$2 == d { found = 1 } END { exit !found }' /proc/self/mounts; then
  find "$data_dir" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
else
  rm -rf -- "$data_dir"
fi

# Directories the kubelet and the CNI plugins share with any other Kubernetes node on the host
# go only once empty.
for dir in /var/lib/cni/results /var/lib/cni /var/log/containers; do
  rmdir -- "$dir" 2>/dev/null
done

# The binary and what it shares (killall, the links, /etc/ketch) stay while another ketch
# service, with its own uninstall script, remains.
others=
for f in "$bin_dir"/ketch*-uninstall.sh; do
  [ -e "$f" ] && [ "$f" != "$bin_dir/$name-uninstall.sh" ] && others="$others $f"
done
if [ -n "$others" ]; then
  say "keeping $bin_dir/ketch for the other ketch services ($others )"
else
  for link in $links; do
    # Only a link that still points at ketch is ours: the user may have replaced it since.
    [ -L "$link" ] && [ "$(readlink -- "$link")" = "$bin_dir/ketch" ] && rm -f -- "$link"
  done
  rm -f -- "$bin_dir/ketch" "$bin_dir/ketch-killall.sh"
  rm -rf -- /etc/ketch
  # The one path the kubelet does not take from its root dir: its device plugin socket.
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null
fi
rm -f -- "$bin_dir/$name-uninstall.sh"
say "done"
