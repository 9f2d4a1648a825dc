#!/usr/bin/env bash
# testenv.sh starts throwaway servers on loopback for authd's tests: one
# redis-server, a 3-master Redis Cluster and a PostgreSQL cluster, each on
# free ports away from the defaults, so a developer's own servers are never
# touched. Missing servers, and the headless Chromium the browser tests
# drive, are installed with apt-get (when run as root).
#
#   scripts/testenv.sh run CMD [ARGS...]   start, run CMD with the servers'
#                                          addresses exported, stop whatever happens
#   scripts/testenv.sh start DIR           start, write DIR/env (source it), leave running
#   scripts/testenv.sh stop DIR            stop what "start DIR" started
#
# Exported: AUTHD_TEST_REDIS_URL, AUTHD_TEST_REDIS_CLUSTER (host:port,…),
# AUTHD_TEST_DATABASE_URL.
set -euo pipefail

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

apt_updated=0
apt_install() {
  [ "$(id -u)" -eq 0 ] || die "$1 is missing and this is not root: install $* yourself"
  command -v apt-get >/dev/null || die "$1 is missing and there is no apt-get: install $* yourself"
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install $*"
  # Installing must not start the packaged services on their default ports.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.authd && chmod +x /usr/sbin/policy-rc.d.authd
  local had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ "$had_policy" -eq 1 ] || cp /usr/sbin/policy-rc.d.authd /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  [ "$had_policy" -eq 1 ] || rm -f /usr/sbin/policy-rc.d
  rm -f /usr/sbin/policy-rc.d.authd
}

pg_bindir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
}

ensure_tools() {
  local pkgs=()
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  command -v redis-cli >/dev/null || pkgs+=(redis-tools)
  [ -n "$(pg_bindir)" ] || pkgs+=(postgresql)
  # The browser tests drive a headless Chromium. Without root it is not
  # fatal: those tests skip (and fail under CI=true, which runs as root).
  if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      pkgs+=(chromium)
    else
      log "no chromium: the browser tests will be skipped (apt-get install chromium)"
    fi
  fi
  if [ ${#pkgs[@]} -gt 0 ]; then
    apt_install "${pkgs[@]}"
  fi
  PGBIN=$(pg_bindir)
  [ -n "$PGBIN" ] || die "PostgreSQL server binaries not found after install"
}

# port_free P: true when nothing listens on 127.0.0.1:P.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port: a free port in 20000-45000 whose +10000 twin (the Redis Cluster
# bus) is free too; ports above 55535 are refused for cluster nodes.
taken=" "
pick_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 25000))
    case "$taken" in *" $p "*|*" $((p + 10000)) "*) continue ;; esac
    if port_free "$p" && port_free "$((p + 10000))"; then
      taken="$taken$p $((p + 10000)) "
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

wait_redis() {
  local port=$1 i
  for i in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return
    sleep 0.05
  done
  die "redis-server on port $port did not start"
}

start_all() {
  local dir=$1
  ensure_tools
  mkdir -p "$dir"

  # One redis-server.
  local rport; rport=$(pick_port)
  mkdir -p "$dir/redis"
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir/redis" --daemonize yes --pidfile "$dir/redis/redis.pid" \
    --logfile "$dir/redis/redis.log" >/dev/null
  echo "$rport" > "$dir/redis.port"
  wait_redis "$rport"

  # Three cluster masters, no replicas.
  local cports=() p
  for i in 1 2 3; do
    p=$(pick_port)
    cports+=("$p")
    mkdir -p "$dir/cluster/$p"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
      --cluster-enabled yes --cluster-config-file "$dir/cluster/$p/nodes.conf" \
      --cluster-node-timeout 5000 --dir "$dir/cluster/$p" --daemonize yes \
      --pidfile "$dir/cluster/$p/redis.pid" --logfile "$dir/cluster/$p/redis.log" >/dev/null
    echo "$p" >> "$dir/cluster.ports"
  done
  for p in "${cports[@]}"; do wait_redis "$p"; done
  redis-cli --cluster create "127.0.0.1:${cports[0]}" "127.0.0.1:${cports[1]}" "127.0.0.1:${cports[2]}" \
    --cluster-replicas 0 --cluster-yes >"$dir/cluster/create.log" 2>&1 \
    || { cat "$dir/cluster/create.log" >&2; die "redis cluster create failed"; }
  local ok=0
  for i in $(seq 1 200); do
    ok=1
    for p in "${cports[@]}"; do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    [ "$ok" -eq 1 ] && break
    sleep 0.05
  done
  [ "$ok" -eq 1 ] || die "redis cluster did not reach cluster_state:ok"

  # PostgreSQL, run as an unprivileged user when we are root.
  local pport; pport=$(pick_port)
  local pgdir="$dir/pg"
  mkdir -p "$pgdir"
  local runas=()
  if [ "$(id -u)" -eq 0 ]; then
    local user=postgres
    if ! id "$user" >/dev/null 2>&1; then
      user=authdtest
      id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
    fi
    chown -R "$user" "$pgdir"
    chmod 755 "$dir"
    runas=(runuser -u "$user" --)
  fi
  # The unprivileged user may not be able to enter the caller's directory.
  cd "$pgdir"
  "${runas[@]}" "$PGBIN/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/pg-initdb.log" 2>&1 \
    || { cat "$dir/pg-initdb.log" >&2; die "initdb failed"; }
  # pg_stat_statements lets the load benchmarks count the statements each
  # operation runs; it can only be loaded at start.
  local preload=""
  if [ -e "$("$PGBIN/pg_config" --pkglibdir 2>/dev/null)/pg_stat_statements.so" ]; then
    preload="-c shared_preload_libraries=pg_stat_statements"
  fi
  "${runas[@]}" "$PGBIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
    -o "-k $pgdir -p $pport -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 $preload" start >/dev/null \
    || { cat "$pgdir/server.log" >&2; die "PostgreSQL did not start"; }
  echo "$pport" > "$dir/pg.port"
  cd - >/dev/null

  local cluster
  cluster=$(printf '127.0.0.1:%s,' "${cports[@]}")
  cat > "$dir/env" <<EOF
export AUTHD_TEST_REDIS_URL=redis://127.0.0.1:$rport/0
export AUTHD_TEST_REDIS_CLUSTER=${cluster%,}
export AUTHD_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$pport/postgres?sslmode=disable
EOF
  log "redis 127.0.0.1:$rport, cluster ${cluster%,}, postgres 127.0.0.1:$pport"
}

stop_all() {
  local dir=$1 p
  [ -d "$dir" ] || return 0
  if [ -f "$dir/redis.port" ]; then
    redis-cli -p "$(cat "$dir/redis.port")" shutdown nosave >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/cluster.ports" ]; then
    for p in $(cat "$dir/cluster.ports"); do
      redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
  fi
  # A redis-server a test stopped and restarted may have a new pid: kill by pidfile too.
  for f in "$dir"/redis/redis.pid "$dir"/cluster/*/redis.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  if [ -f "$dir/pg/data/postmaster.pid" ]; then
    local owner
    owner=$(stat -c %U "$dir/pg/data")
    if [ "$(id -u)" -eq 0 ] && [ "$owner" != root ]; then
      (cd / && runuser -u "$owner" -- "$(pg_bindir)/pg_ctl" -D "$dir/pg/data" -m immediate -w stop) >/dev/null 2>&1 || true
    else
      "$(pg_bindir)/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$dir"
}

cmd=${1:-}
case "$cmd" in
  run)
    shift
    [ $# -gt 0 ] || die "usage: $0 run CMD [ARGS...]"
    dir=$(mktemp -d /tmp/authd-testenv.XXXXXX)
    trap 'stop_all "$dir"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_all "$dir"
    # shellcheck disable=SC1091
    . "$dir/env"
    export AUTHD_TEST_REDIS_SERVER_DIR="$dir/redis"
    rc=0
    "$@" || rc=$?
    exit "$rc"
    ;;
  start)
    [ -n "${2:-}" ] || die "usage: $0 start DIR"
    start_all "$2"
    echo "$2/env"
    ;;
  stop)
    [ -n "${2:-}" ] || die "usage: $0 stop DIR"
    stop_all "$2"
    ;;
  *)
    die "usage: $0 run CMD [ARGS...] | start DIR | stop DIR"
    ;;
esac
