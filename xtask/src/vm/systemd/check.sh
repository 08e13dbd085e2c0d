#!/bin/bash
# Runs in the guest as tcpwhy-check.service: installs the package, checks tcpwhy.service under
# this real systemd, prints "@@ CHECK <name> ok|FAILED <detail>" per check on the serial console
# (the host parses them); the service powers the guest off when it ends.
set -u

EVENTS=/var/log/tcpwhy/events.jsonl
NETNS=tcpwhy-check

check() {
    local name=$1 detail status
    shift
    detail=$("$@" 2>&1)
    status=$?
    detail=$(tr '\n' ' ' <<<"$detail")
    if [ $status = 0 ]; then
        echo "@@ CHECK $name ok $detail"
    else
        echo "@@ CHECK $name FAILED $detail"
    fi
}

# Retries a command every half second until it succeeds or the seconds given are up.
within() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.5
    done
}

property() { systemctl show -p "$1" --value tcpwhy; }
# 0 when not running: never a pid to kill (kill 0 is this script's own process group).
main_pid() { property MainPID; }
# The agent's last lines, for a check that found it not running.
agent_log() { echo "agent's log:"; journalctl -a -u tcpwhy -o cat -n 8; }
metrics() { curl -sf --max-time 10 http://127.0.0.1:9977/metrics; }

installed() {
    dpkg -i /root/tcpwhy.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; agent_log; return 1; }
    # The postinst enables and starts it where systemd runs.
    echo "$(systemctl is-enabled tcpwhy) $(systemctl is-active tcpwhy)"
    [ "$(systemctl is-active tcpwhy)" = active ]
}

# The sandbox is in force: only the unit's capabilities, no new privileges, a read-only root.
sandboxed() {
    local pid status root memlock
    pid=$(main_pid)
    [ "$pid" != 0 ] || { echo "not running"; return 1; }
    status=/proc/$pid/status
    root=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo")
    memlock=$(awk '/^Max locked memory/ { print $4 }' "/proc/$pid/limits")
    echo "CapEff=$(awk '/^CapEff/ { print $2 }' "$status")" \
        "NoNewPrivs=$(awk '/^NoNewPrivs/ { print $2 }' "$status") root=$root memlock=$memlock"
    # CAP_BPF (39), CAP_PERFMON (38), CAP_SYS_ADMIN (21), CAP_SYS_PTRACE (19), CAP_DAC_READ_SEARCH (2)
    grep -q '^CapEff:[[:space:]]*000000c000280004$' "$status" &&
        grep -q '^NoNewPrivs:[[:space:]]*1$' "$status" &&
        [[ $root == ro,* ]]
}

# Type=notify: `systemctl start` returns, and the unit turns active, only after the agent logged
# that its probes are attached (each time in microseconds since boot). journald stamps a line when
# it reads it, which may come after systemd took the readiness the agent sent next: a little
# slack, far below the seconds attaching takes under TCG (a unit active at exec would be seconds
# early).
READINESS_SLACK_US=250000
ready_after_attach() {
    systemctl stop tcpwhy && systemctl start tcpwhy || { agent_log; return 1; }
    local started active attached
    started=$(property ExecMainStartTimestampMonotonic)
    active=$(property ActiveEnterTimestampMonotonic)
    attached=$(journalctl -u tcpwhy -o short-monotonic | grep 'attached, serving' | tail -n 1 |
        sed 's/^\[ *\([0-9]*\)\.\([0-9]*\)\].*/\1\2/')
    echo "exec=$started attached=$attached active=$active"
    [ -n "$attached" ] && [ "$started" -lt "$attached" ] &&
        [ "$attached" -le $((active + READINESS_SLACK_US)) ]
}

probes_attached() {
    local health
    health=$(curl -s --max-time 10 -w ' %{http_code}' 'http://127.0.0.1:9977/healthz?strict')
    echo "healthz?strict: $health;" \
        "$(metrics | grep -c '^tcpwhy_probe_attached{.*} 1$') probes attached"
    [ "${health##* }" = 200 ]
}

listening_in_netns() { [ -n "$(ip netns exec $NETNS ss -Htln 'sport = :8080')" ]; }

# A listener in a namespace of its own that never accepts: the agent must enter the namespace
# to see the connection waiting in its queue.
namespaces_entered() {
    ip netns add $NETNS && ip -n $NETNS link set lo up || return 1
    local inode series
    inode=$(stat -L -c %i /run/netns/$NETNS)
    series="tcpwhy_listen_queue_length{listener=\"127.0.0.1:8080\",namespace=\"$inode\"} 1"
    ip netns exec $NETNS systemd-socket-activate -l 127.0.0.1:8080 sleep 600 >/dev/null 2>&1 &
    local listener=$!
    within 10 listening_in_netns &&
        ip netns exec $NETNS curl -s --max-time 2 http://127.0.0.1:8080/ >/dev/null
    within 15 metrics_have "$series"
    local found=$?
    if [ $found = 0 ]; then
        echo "$series"
    else
        echo "no $series; the namespace's listeners: $(ip netns exec $NETNS ss -Htln);" \
            "exported: $(metrics | grep '^tcpwhy_listen_queue');" \
            "modules: $(grep -o '^[a-z_]*diag' /proc/modules);" \
            "log: $(journalctl -u tcpwhy -o cat -p warning)"
    fi
    kill $listener
    return $found
}

metrics_have() { metrics | grep -qF "$1"; }

event_logged() {
    grep '"cause":"no_listener"' $EVENTS 2>/dev/null | grep -qF "\"local\":\"127.0.0.1:$1\""
}

# A refused connect to a closed port lands in the event file as a no_listener event.
refused_connect_logged() {
    curl -s --max-time 5 "http://127.0.0.1:$1/"
    within 10 event_logged "$1" || { echo "no no_listener event for port $1 in $EVENTS"; return 1; }
    echo "no_listener event for 127.0.0.1:$1 in $EVENTS"
}

resets_counted() {
    local series
    series=$(metrics | grep '^tcpwhy_resets_total{cause="no_listener",direction="sent"}')
    echo "$series"
    [ -n "$series" ] && [ "${series##* }" -ge 1 ]
}

# logrotate's way: move the file, SIGHUP; the same process goes on into a new file.
survives_sighup() {
    local pid
    pid=$(main_pid)
    mv $EVENTS $EVENTS.1
    systemctl kill -s HUP tcpwhy || return 1
    sleep 2
    if [ "$(property ActiveState)" != active ] || [ "$(main_pid)" != "$pid" ]; then
        echo "after SIGHUP: $(property ActiveState), pid $pid -> $(main_pid)"
        return 1
    fi
    echo "pid $pid still active;"
    refused_connect_logged 2
}

# Started again since: the main process died and the restart counter moved past the one given.
back_up() { [ "$(property ActiveState)" = active ] && [ "$(property NRestarts)" -gt "$1" ]; }

restarted_after_kill() {
    local pid
    pid=$(main_pid)
    [ "$pid" != 0 ] || { echo "not running"; return 1; }
    kill -9 "$pid"
    if ! within 120 back_up "$(property NRestarts)"; then
        echo "after kill -9: $(property ActiveState)/$(property SubState), pid $(main_pid)"
        return 1
    fi
    echo "pid $pid killed, pid $(main_pid) active after $(property NRestarts) restart(s);"
    refused_connect_logged 3
}

journal_without_colours() {
    local log
    # -a: journalctl shows a message holding control characters as "[blob data]" otherwise.
    log=$(journalctl -a -u tcpwhy -o cat)
    if grep -q $'\e' <<<"$log"; then
        echo "escape sequences: $(grep -m 1 $'\e' <<<"$log" | cat -v)"
        return 1
    fi
    echo "$(wc -l <<<"$log") lines, no ESC"
    grep -q 'attached, serving' <<<"$log"
}

echo "@@ KERNEL $(uname -r)"
check installed installed
check sandboxed sandboxed
check ready-after-attach ready_after_attach
check probes probes_attached
check namespaces namespaces_entered
check events refused_connect_logged 1
check metrics resets_counted
check sighup survives_sighup
check restart restarted_after_kill
check journal journal_without_colours
echo "@@ DONE"
