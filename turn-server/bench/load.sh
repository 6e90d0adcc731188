#!/usr/bin/env bash
# Load: our turn-server or coturn's turnserver, with the same number of threads, under
# coturn's turnutils_uclient (shared-secret credentials, channels, CLIENTS clients each
# sending MESSAGES datagrams of 200 bytes every millisecond to turnutils_peer, which echoes
# them). Prints what uclient counted and the server's CPU time (user + system, from /proc).
# Every client logs in as the same user: ours gets coturn's default of no per-user quota.
# Not run in CI. Build ours first: cargo build --release -p turn-server.
#
#   turn-server/bench/load.sh ours|coturn [THREADS] [CLIENTS] [MESSAGES]
set -euo pipefail
which=${1:?ours or coturn}
threads=${2:-2}
clients=${3:-40}
messages=${4:-1000}
port=${PORT:-$([ "$which" = ours ] && echo 43478 || echo 45478)}
peer_port=$((port + 900))
cd "$(dirname "$0")/../.."

turnutils_peer -L 127.0.0.1 -p "$peer_port" >/dev/null 2>&1 &
peer=$!
case $which in
  ours)
    target/release/turn-server --listen "127.0.0.1:$port" --relay-ports "$((port + 1))-$((port + 800))" \
      --workers "$threads" --auth-secret north --allow-peers loopback --no-tcp \
      --max-allocations-per-user 100000 2>&1 | grep -v INFO &
    ;;
  coturn)
    turnserver -n --use-auth-secret --static-auth-secret north --realm turn --no-tls --no-dtls \
      --no-cli --no-tcp --allow-loopback-peers -L 127.0.0.1 --relay-ip 127.0.0.1 \
      --listening-port "$port" --min-port "$((port + 1))" --max-port "$((port + 800))" \
      --relay-threads "$threads" --log-file /dev/null --no-stdout-log >/dev/null 2>&1 &
    ;;
  *) echo "ours or coturn" >&2; exit 2 ;;
esac
sleep 1
server=$(pgrep -n -f "^[^ ]*turn-?server .*$port") || { echo "$which did not start" >&2; exit 1; }
trap 'kill $server $peer 2>/dev/null || true; while kill -0 $server 2>/dev/null; do sleep 0.1; done' EXIT
turnutils_uclient -W north -u load -c -p "$port" -e 127.0.0.1 -r "$peer_port" \
  -m "$clients" -n "$messages" -l 200 -z 1 127.0.0.1 2>&1 |
  grep -E "tot_send_msgs=[0-9]+, tot_recv_msgs|Total lost" | tail -2
ticks=$(getconf CLK_TCK)
read -r -a stat < "/proc/$server/stat"
echo "$which: server cpu $(( (stat[13] + stat[14]) * 1000 / ticks )) ms ($threads threads)"
