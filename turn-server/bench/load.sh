#!/usr/bin/env bash
# Load: our turn-server or coturn's turnserver, with the same number of threads, under
# coturn's turnutils_uclient: CLIENTS clients with channels, each sending MESSAGES datagrams
# of 160 bytes (paced by uclient, -z 1) to turnutils_peer, which echoes them, so every
# datagram is relayed twice (client -> peer, peer -> client). Shared-secret credentials;
# every client logs in as the same user (ours gets coturn's default of no per-user quota).
# Prints one line: the server, its threads, the relayed packets (uclient's sent + received),
# those lost, the load's wall seconds (uclient's run), relayed packets per second, the
# server's CPU seconds (user + system, /proc) and its CPU seconds per million relayed packets.
# UCLIENTS=N runs N uclient processes at once, each with CLIENTS clients (one uclient is
# single-threaded and paces its sends: it cannot saturate a server alone).
# Not run in CI. Build ours first: cargo build --release -p turn-server.
#
#   [UCLIENTS=N] turn-server/bench/load.sh ours|coturn [THREADS] [CLIENTS] [MESSAGES]
set -euo pipefail
which=${1:?ours or coturn}
threads=${2:-2}
clients=${3:-100}
messages=${4:-1000}
uclients=${UCLIENTS:-1}
loads=()
port=${PORT:-$([ "$which" = ours ] && echo 43478 || echo 45478)}
peer_port=$((port + 900))
cd "$(dirname "$0")/../.."

turnutils_peer -L 127.0.0.1 -p "$peer_port" >/dev/null 2>&1 &
peer=$!
case $which in
  ours)
    target/release/turn-server --listen "127.0.0.1:$port" --relay-ports "$((port + 1))-$((port + 800))" \
      --workers "$threads" --auth-secret north --allow-peers loopback --no-tcp \
      --max-allocations-per-user 100000 >/dev/null 2>&1 &
    ;;
  coturn)
    turnserver -n --use-auth-secret --static-auth-secret north --realm turn --no-tls --no-dtls \
      --no-cli --no-tcp --allow-loopback-peers -L 127.0.0.1 --relay-ip 127.0.0.1 \
      --listening-port "$port" --min-port "$((port + 1))" --max-port "$((port + 800))" \
      --relay-threads "$threads" --log-file /dev/null --no-stdout-log >/dev/null 2>&1 &
    ;;
  *) echo "ours or coturn" >&2; exit 2 ;;
esac
server=$!
trap 'kill $server $peer 2>/dev/null || true; while kill -0 $server 2>/dev/null; do sleep 0.1; done' EXIT
sleep 1
kill -0 "$server" 2>/dev/null || { echo "$which did not start" >&2; exit 1; }
logs=$(mktemp -d)
start=$(date +%s%N)
for i in $(seq "$uclients"); do
  turnutils_uclient -W north -u load -c -p "$port" -e 127.0.0.1 -r "$peer_port" \
    -m "$clients" -n "$messages" -l 160 -z 1 127.0.0.1 >"$logs/$i" 2>&1 &
  loads+=($!)
done
wait "${loads[@]}" || true
end=$(date +%s%N)
read -r -a stat < "/proc/$server/stat"
ticks=$(getconf CLK_TCK)
sent=0 received=0
# A uclient that gave up (an allocation or a channel refused) counts 0, and says why.
figure() { grep -o "$1=[0-9]*" "$2" | tail -1 | cut -d= -f2 || true; }
for log in "$logs"/*; do
  s=$(figure tot_send_msgs "$log") r=$(figure tot_recv_msgs "$log")
  [ -n "$s" ] || grep -m 2 -E 'error|Cannot' "$log" >&2 || true
  sent=$((sent + ${s:-0})) received=$((received + ${r:-0}))
done
lost=$((sent - received))
rm -r "$logs"
awk -v w="$which" -v t="$threads" -v s="$sent" -v r="$received" -v l="$lost" \
    -v ns=$((end - start)) -v cpu=$(( stat[13] + stat[14] )) -v hz="$ticks" 'BEGIN {
  relayed = s + r; wall = ns / 1e9; c = cpu / hz
  printf "%s threads=%d relayed=%d lost=%d wall=%.2fs pps=%.0f cpu=%.2fs cpu_per_million=%.2fs\n",
    w, t, relayed, l, wall, relayed / wall, c, c * 1e6 / relayed }'
