#!/bin/sh
# install.sh installs ketch as a service (systemd or OpenRC) and starts it.
#
#   server:  INSTALL_KETCH_BIN=./ketch sh install.sh [server] [FLAGS...]
#   agent:   KETCH_URL=https://SERVER:6443 KETCH_TOKEN=TOKEN INSTALL_KETCH_BIN=./ketch sh install.sh [FLAGS...]
#
# The binary comes from a local file or from a download, nothing else; the installer reaches the
# network only for that download, and checks the host (ketch check-config) before it changes
# anything. Running it again with a new binary upgrades ketch: the service restarts, the pods
# keep running.
#
# Environment:
#   INSTALL_KETCH_BIN           the ketch binary to install (air-gapped hosts); checked against a
#                               sha256sum.txt next to it when there is one
#   INSTALL_KETCH_DOWNLOAD_URL  where to download ketch-linux-ARCH and sha256sum.txt from instead
#                               (the directory a release's files are in); the binary must match
#   KETCH_URL                   the server to join: makes this an agent (https:// only)
#   KETCH_TOKEN, KETCH_TOKEN_FILE  the join token (an agent needs one), or a server's token
#   INSTALL_KETCH_EXEC          the command and flags (server/agent), before the arguments
#   INSTALL_KETCH_BIN_DIR       where ketch, its links and scripts go (default /usr/local/bin)
#   INSTALL_KETCH_NAME          service name suffix, for several services on one host: ketch-NAME
#                               (default: ketch for a server, ketch-agent for an agent)
#   INSTALL_KETCH_SKIP_ENABLE   true: do not enable the service at boot (nor start it)
#   INSTALL_KETCH_SKIP_START    true: do not start (or restart) the service
#   INSTALL_KETCH_SYMLINK       kubectl, ctr and crictl links to ketch: made where no such command
#                               exists yet (default), skip (none), force (replace existing ones)
#   INSTALL_KETCH_READY_TIMEOUT seconds to wait for the node to be Ready under OpenRC (default 600)
#   INSTALL_KETCH_PACKAGE_DIR   where the service templates are (default: package/ next to this
#                               script, else downloaded from INSTALL_KETCH_DOWNLOAD_URL)
#
# POSIX sh: it runs under busybox ash (Alpine), dash and bash.
set -eu

say() { echo "ketch-install: $*"; }
fatal() {
  echo "ketch-install: error: $*" >&2
  echo "ketch-install: nothing was changed" >&2
  exit 1
}

# --- What to install: every check comes before any change. -----------------------------------

[ "$(id -u)" = 0 ] || fatal "run as root (for example: sudo sh install.sh); it installs a system service"

case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  armv7* | armv8l) arch=arm ;;
  *) fatal "unsupported architecture $(uname -m): ketch is built for x86_64 (amd64), aarch64 (arm64) and armv7 (arm)" ;;
esac

# systemd when it booted the host (sd_booted: /run/systemd/system), else OpenRC.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  init=systemd
elif command -v openrc-run >/dev/null 2>&1 || [ -x /sbin/openrc-run ]; then
  init=openrc
else
  fatal "no systemd and no OpenRC found: install.sh installs a service for one of them; run ketch server (or ketch agent) from your own init system instead"
fi

# The command line: INSTALL_KETCH_EXEC, then the arguments. Its first word may name the command;
# otherwise KETCH_URL makes an agent and its absence a server.
set -f
# shellcheck disable=SC2086 # INSTALL_KETCH_EXEC is words, as with k3s's INSTALL_K3S_EXEC
set -- ${INSTALL_KETCH_EXEC:-} "$@"
set +f
case ${1:-} in
  server | agent) cmd=$1; shift ;;
  -* | '') if [ -n "${KETCH_URL:-}" ]; then cmd=agent; else cmd=server; fi ;;
  *) fatal "unknown command '$1': the command is server or agent, followed by its flags" ;;
esac

if [ -n "${KETCH_URL:-}" ]; then
  [ "$cmd" = agent ] || fatal "KETCH_URL joins this host to a server as an agent, but the command is $cmd; drop KETCH_URL to install a server"
  case $KETCH_URL in
    https://?*) ;;
    *) fatal "KETCH_URL must be the server's https:// address, like https://192.0.2.10:6443 (got '$KETCH_URL')" ;;
  esac
fi
if [ "$cmd" = agent ]; then
  agent_server=
  prev=
  for arg in "$@"; do
    case $prev in --server | -s) agent_server=$arg ;; esac
    case $arg in --server=*) agent_server=${arg#--server=} ;; esac
    prev=$arg
  done
  [ -n "${KETCH_URL:-}$agent_server" ] || fatal "an agent needs its server: set KETCH_URL=https://SERVER:6443 (or pass --server)"
  if [ -z "${KETCH_TOKEN:-}" ] && [ -z "${KETCH_TOKEN_FILE:-}" ]; then
    case " $* " in
      *" --token "* | *" --token="* | *" -t "* | *" --token-file "* | *" --token-file="*) ;;
      *) fatal "an agent needs the join token: set KETCH_TOKEN (the server's /var/lib/ketch/server/token, or one from ketch token create) or KETCH_TOKEN_FILE" ;;
    esac
  fi
fi
if [ -n "${KETCH_TOKEN_FILE:-}" ] && [ ! -r "$KETCH_TOKEN_FILE" ]; then
  fatal "KETCH_TOKEN_FILE $KETCH_TOKEN_FILE cannot be read"
fi

# The node's dirs, from its flags (the uninstall script removes the data dir and cleans up the
# run dir).
data_dir=/var/lib/ketch
run_dir=/run/ketch
prev=
for arg in "$@"; do
  case $prev in
    --data-dir | -d) data_dir=$arg ;;
    --run-dir) run_dir=$arg ;;
  esac
  case $arg in
    --data-dir=*) data_dir=${arg#--data-dir=} ;;
    --run-dir=*) run_dir=${arg#--run-dir=} ;;
  esac
  prev=$arg
done
for path in "$data_dir" "$run_dir"; do
  case $path in
    /*/* | /[!/]*) ;;
    *) fatal "the data dir and run dir must be absolute paths below / (got '$path')" ;;
  esac
  case $path in *[!A-Za-z0-9/._-]*) fatal "the path '$path' has characters install.sh does not quote; choose one of letters, digits and / . _ -" ;; esac
done

bin_dir=${INSTALL_KETCH_BIN_DIR:-/usr/local/bin}
case $bin_dir in /*) ;; *) fatal "INSTALL_KETCH_BIN_DIR must be an absolute path (got '$bin_dir')" ;; esac
case $bin_dir in *[!A-Za-z0-9/._-]*) fatal "INSTALL_KETCH_BIN_DIR '$bin_dir' has characters install.sh does not quote" ;; esac

if [ -n "${INSTALL_KETCH_NAME:-}" ]; then
  case $INSTALL_KETCH_NAME in
    *[!a-z0-9-]* | -*) fatal "INSTALL_KETCH_NAME must be lower-case letters, digits and '-' (got '$INSTALL_KETCH_NAME')" ;;
  esac
  name=ketch-${INSTALL_KETCH_NAME#ketch-}
elif [ "$cmd" = agent ]; then
  name=ketch-agent
else
  name=ketch
fi

symlink=${INSTALL_KETCH_SYMLINK:-}
case $symlink in '' | skip | force) ;; *) fatal "INSTALL_KETCH_SYMLINK is skip or force (or unset), not '$symlink'" ;; esac
for var in INSTALL_KETCH_SKIP_ENABLE INSTALL_KETCH_SKIP_START; do
  eval "value=\${$var:-}"
  case $value in '' | true | false) ;; *) fatal "$var is true or false, not '$value'" ;; esac
done

case ${INSTALL_KETCH_READY_TIMEOUT:-600} in
  '' | *[!0-9]*) fatal "INSTALL_KETCH_READY_TIMEOUT is a number of seconds, not '$INSTALL_KETCH_READY_TIMEOUT'" ;;
esac

for var in KETCH_URL KETCH_TOKEN KETCH_TOKEN_FILE; do
  eval "value=\${$var:-}"
  case $value in *"'"* | *'
'*) fatal "$var must not contain a quote or a newline" ;; esac
done

# The download and the new binary wait in a temporary dir on the bin dir's file system when it
# exists (so the binary can run there even where /tmp is noexec), removed at exit.
tmp_base=/var/tmp
[ -d "$bin_dir" ] && tmp_base=$bin_dir
tmp=$(mktemp -d "$tmp_base/.ketch-install.XXXXXX") || fatal "cannot make a temporary dir in $tmp_base"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# fetch URL FILE: downloads with curl or wget, whichever the host has.
fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    fatal "downloading needs curl or wget; or copy ketch here and set INSTALL_KETCH_BIN"
  fi
}

# verify FILE SUMS NAME: FILE's sha256 must be NAME's line in SUMS.
verify() {
  want=$(awk -v n="$3" '$2 == n || $2 == "*" n { print $1; exit }' "$2")
  [ -n "$want" ] || fatal "$2 lists no checksum for $3"
  got=$(sha256sum "$1" | awk '{ print $1 }')
  [ "$got" = "$want" ] || fatal "the checksum of $3 does not match $2 (sha256 $got, want $want): the file is damaged or not the release's"
}

# The binary.
if [ -n "${INSTALL_KETCH_BIN:-}" ]; then
  [ -f "$INSTALL_KETCH_BIN" ] || fatal "INSTALL_KETCH_BIN $INSTALL_KETCH_BIN is not a file"
  cp "$INSTALL_KETCH_BIN" "$tmp/ketch"
  sums=$(dirname "$INSTALL_KETCH_BIN")/sha256sum.txt
  if [ -f "$sums" ]; then
    verify "$tmp/ketch" "$sums" "$(basename "$INSTALL_KETCH_BIN")"
  fi
  source_desc=$INSTALL_KETCH_BIN
elif [ -n "${INSTALL_KETCH_DOWNLOAD_URL:-}" ]; then
  url=${INSTALL_KETCH_DOWNLOAD_URL%/}
  say "downloading ketch-linux-$arch and sha256sum.txt from $url"
  fetch "$url/sha256sum.txt" "$tmp/sha256sum.txt" || fatal "downloading $url/sha256sum.txt failed"
  fetch "$url/ketch-linux-$arch" "$tmp/ketch" || fatal "downloading $url/ketch-linux-$arch failed"
  verify "$tmp/ketch" "$tmp/sha256sum.txt" "ketch-linux-$arch"
  source_desc="$url/ketch-linux-$arch"
else
  fatal "no binary to install: set INSTALL_KETCH_BIN=/path/to/ketch, or INSTALL_KETCH_DOWNLOAD_URL to a release's download directory"
fi
chmod 0755 "$tmp/ketch"
version=$("$tmp/ketch" --version 2>&1) || fatal "$source_desc does not run on this host ($(uname -m)): $version"
version=$(echo "$version" | head -n 1)

# The templates: next to this script in a checkout or release directory, else downloaded.
pkg_dir=${INSTALL_KETCH_PACKAGE_DIR:-}
if [ -z "$pkg_dir" ]; then
  here=$(cd "$(dirname "$0")" 2>/dev/null && pwd) || here=.
  pkg_dir=$here/package
fi
templates="ketch.service ketch.openrc ketch.logrotate ketch-killall.sh ketch-uninstall.sh"
if [ ! -f "$pkg_dir/ketch-uninstall.sh" ]; then
  [ -n "${INSTALL_KETCH_DOWNLOAD_URL:-}" ] ||
    fatal "the service templates are not in $pkg_dir: run install.sh from its directory (with package/ next to it), or set INSTALL_KETCH_PACKAGE_DIR"
  [ -f "$tmp/sha256sum.txt" ] || fetch "${INSTALL_KETCH_DOWNLOAD_URL%/}/sha256sum.txt" "$tmp/sha256sum.txt"
  mkdir "$tmp/package"
  for t in $templates; do
    fetch "${INSTALL_KETCH_DOWNLOAD_URL%/}/package/$t" "$tmp/package/$t" || fatal "downloading package/$t failed"
    verify "$tmp/package/$t" "$tmp/sha256sum.txt" "package/$t"
  done
  pkg_dir=$tmp/package
fi
for t in $templates; do
  [ -f "$pkg_dir/$t" ] || fatal "$pkg_dir/$t is missing"
done

# The host check: ketch's own (the checks ketch server and agent make at start, and more).
say "checking this host (ketch check-config --data-dir $data_dir)"
if ! "$tmp/ketch" check-config --data-dir "$data_dir" >"$tmp/check" 2>&1; then
  cat "$tmp/check" >&2
  fatal "this host cannot run a ketch node yet: fix the fatal findings above as they say, then run install.sh again"
fi
# The warnings with their fixes, and the verdict.
awk '/^[0-9]+ ok/ { print; next } /^[^ ]/ || /^$/ { show = 0; next }
  /^  [a-z]+  / { show = ($1 == "warning") } show { print }' "$tmp/check"

# --- The plan. ----------------------------------------------------------------------------------

if [ "$init" = systemd ]; then
  unit=/etc/systemd/system/$name.service
  env_file=$unit.env
  service_files=$unit
  log_file=
else
  unit=/etc/init.d/$name
  env_file=/etc/ketch/$name.env
  log_file=/var/log/$name.log
  service_files="$unit /etc/logrotate.d/$name $log_file"
fi

# The links: kubectl, ctr and crictl run ketch's own, configured for this node.
links=
planned_links=
for tool in kubectl ctr crictl; do
  link=$bin_dir/$tool
  if [ -L "$link" ] && [ "$(readlink -- "$link")" = "$bin_dir/ketch" ]; then
    links="$links $link" # made by an earlier install
    continue
  fi
  case $symlink in
    skip) continue ;;
    force) ;;
    *)
      if command -v "$tool" >/dev/null 2>&1; then
        say "not linking $tool: $(command -v "$tool") exists (INSTALL_KETCH_SYMLINK=force replaces it)"
        continue
      fi
      ;;
  esac
  links="$links $link"
  planned_links="$planned_links $tool"
done

upgrade=false
[ -f "$bin_dir/ketch" ] && upgrade=true

say "installing $version from $source_desc"
say "  as: ketch $cmd${*:+ $*}"
say "  service: $name ($init, $unit), env file $env_file (mode 0600)"
say "  binary: $bin_dir/ketch$( [ -n "$planned_links" ] && echo ", links:$planned_links")"
say "  scripts: $bin_dir/ketch-killall.sh, $bin_dir/$name-uninstall.sh"
say "  data dir: $data_dir, run dir: $run_dir"
$upgrade && say "  upgrade: $bin_dir/ketch is replaced and the service restarts; running pods keep running"

# --- The changes. -------------------------------------------------------------------------------

# fill TEMPLATE: the template with the @...@ fields of this install. The values hold no '|'
# (paths are checked above; the command line goes in through escape_sed below).
fill() {
  sed -e "s|@NAME@|$name|g" -e "s|@ROLE@|$cmd|g" -e "s|@INIT@|$init|g" -e "s|@BIN@|$bin_dir/ketch|g" \
    -e "s|@BIN_DIR@|$bin_dir|g" -e "s|@DATA_DIR@|$data_dir|g" -e "s|@RUN_DIR@|$run_dir|g" \
    -e "s|@ENV_FILE@|$env_file|g" -e "s|@SERVICE_FILES@|$service_files|g" -e "s|@LOG@|$log_file|g" \
    -e "s|@LINKS@|${links# }|g" "$pkg_dir/$1"
}

# escape_sed TEXT: TEXT as the replacement of a sed s||| command.
escape_sed() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

# The command line, quoted for systemd's ExecStart= (double quotes; % and $ are specifiers and
# variables there) and for OpenRC's command_args (shell words).
exec_line="$bin_dir/ketch $cmd"
args_line=$cmd
for arg in "$@"; do
  sd=$(printf '%s' "$arg" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/%/%%/g' -e 's/\$/$$/g')
  exec_line="$exec_line \"$sd\""
  sh_arg=$(printf '%s' "$arg" | sed -e "s/'/'\\\\''/g")
  args_line="$args_line '$sh_arg'"
done

mkdir -p "$bin_dir" /etc/ketch
cp "$tmp/ketch" "$bin_dir/.ketch.new"
mv -f "$bin_dir/.ketch.new" "$bin_dir/ketch"
for tool in $planned_links; do
  ln -sfn "$bin_dir/ketch" "$bin_dir/$tool"
done
fill ketch-killall.sh >"$bin_dir/.ketch-killall.new" && chmod 0755 "$bin_dir/.ketch-killall.new"
mv -f "$bin_dir/.ketch-killall.new" "$bin_dir/ketch-killall.sh"
fill ketch-uninstall.sh >"$bin_dir/$name-uninstall.sh" && chmod 0755 "$bin_dir/$name-uninstall.sh"

(
  umask 077
  : >"$env_file.new"
  for var in KETCH_URL KETCH_TOKEN KETCH_TOKEN_FILE; do
    eval "value=\${$var:-}"
    [ -n "$value" ] && echo "$var='$value'" >>"$env_file.new"
  done
  mv -f "$env_file.new" "$env_file"
)
chmod 0600 "$env_file"

if [ "$init" = systemd ]; then
  fill ketch.service | sed "s|@EXEC@|$(escape_sed "$exec_line")|" >"$unit"
  systemctl daemon-reload
else
  fill ketch.openrc | sed "s|@ARGS@|$(escape_sed "$args_line")|" >"$unit"
  chmod 0755 "$unit"
  if [ -d /etc/logrotate.d ]; then
    fill ketch.logrotate >"/etc/logrotate.d/$name"
  fi
fi

if [ "${INSTALL_KETCH_SKIP_ENABLE:-}" = true ]; then
  say "installed; the service is not enabled (INSTALL_KETCH_SKIP_ENABLE)"
  exit 0
fi
if [ "$init" = systemd ]; then
  systemctl enable "$name" >/dev/null 2>&1
else
  rc-update add "$name" default >/dev/null
fi
if [ "${INSTALL_KETCH_SKIP_START:-}" = true ]; then
  say "installed and enabled; not started (INSTALL_KETCH_SKIP_START)"
  exit 0
fi

say "starting $name; it reports ready once its node is Ready (the first start takes longer)"
if [ "$init" = systemd ]; then
  systemctl restart "$name" || {
    echo "ketch-install: error: systemctl restart $name failed; see: systemctl status $name; journalctl -u $name" >&2
    exit 1
  }
else
  # supervise-daemon has no readiness protocol: the node's log says when it is Ready.
  before=$(grep -c 'ketch: node Ready' "$log_file" 2>/dev/null || true)
  rc-service "$name" restart >/dev/null || {
    echo "ketch-install: error: rc-service $name restart failed; see $log_file" >&2
    exit 1
  }
  waited=0
  while [ "$(grep -c 'ketch: node Ready' "$log_file" 2>/dev/null || true)" -le "${before:-0}" ]; do
    if [ "$waited" -ge "${INSTALL_KETCH_READY_TIMEOUT:-600}" ]; then
      echo "ketch-install: error: $name did not report its node Ready within ${waited}s; see $log_file" >&2
      exit 1
    fi
    if ! rc-service "$name" status >/dev/null 2>&1; then
      echo "ketch-install: error: $name stopped while starting; see $log_file" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
fi
say "done: $name is running. kubectl get nodes; uninstall with $bin_dir/$name-uninstall.sh"
