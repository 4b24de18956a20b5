#!/bin/busybox sh
# /init of the kTLS VM (packed by scripts/ktls-vm-test, never run on the host).
#
# Brings up just enough of a system (proc, sys, devtmpfs for wolfSSL's
# /dev/urandom, loopback), loads tls.ko and the crypto it needs, then runs
# the cases listed in /ktls/cases, one per line:
#   NAME echo    VERSION CIPHER SIZE            ktls_echo, SIZE bytes there and back
#   NAME gateway VERSION CIPHER get|getfast|getkeep PATH COUNT MODE
#   NAME gateway VERSION CIPHER keyupdate PATH 1 MODE
#   NAME gateway VERSION CIPHER tamper PATH 0 MODE
#   NAME gateway VERSION CIPHER hold PATH SECONDS MODE
#   NAME gateway VERSION CIPHER post PATH FILE MODE
#       the gateway (config /ktls/gateway-MODE.conf) in front of busybox httpd:
#       COUNT GETs of /ktls/www/PATH on one connection (getfast: the first one
#       in the same segment as the client's Finished; getkeep: then the
#       client's close_notify, which must make the gateway close), a TLS 1.3
#       KeyUpdate between two GETs (answered or closed, see ktls_client.c), one
#       GET and an idle connection while TlsCurrTxSw/TlsCurrRxSw are read, a
#       GET whose record fails authentication (no answer, the connection closed;
#       with kTLS TlsDecryptError must count it), or
#       FILE POSTed to a CGI that answers with the body it got. MODE ktls: the
#       kernel must do the record layer; MODE user (ssl_ktls off): it must not.
#       The gateway must still be running after each case.
# A case passes when the client is content (right bytes back), the server
# side agrees, and /proc/net/tls_stat moved as MODE says: TlsTxSw and
# TlsRxSw count sockets whose TX/RX the kernel's software kTLS took over,
# TlsDecryptError must not move. One "KTLS-RESULT PASS|FAIL name: why" line
# per case, "KTLS-END" when all ran; the host script reads the console.

/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/ktls/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp
ip link set lo up

say() { echo "$*" > /dev/console; }

for m in $(cat /ktls/modules.order); do
    insmod "/ktls/modules/$m" || say "KTLS-MODULE-FAIL $m"
done
if [ ! -r /proc/net/tls_stat ]; then
    say "KTLS-RESULT FAIL modules: /proc/net/tls_stat missing after loading tls.ko"
    say "KTLS-END"
    poweroff -f
fi

stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat; }

CA=/ktls/cert.pem
ECHO_PORT=9443
GW_PORT=8443
BACKEND_PORT=8080

ktls_echo $ECHO_PORT /ktls/cert.pem /ktls/key.pem < /dev/null > /tmp/echo.log 2>&1 &
httpd -p 127.0.0.1:$BACKEND_PORT -h /ktls/www

# A crash or sanitizer report in a gateway log (the patterns of
# tests/integration/conftest.py): the gateway may be an ASan+UBSan build.
CRASH='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|SIGSEGV|SIGABRT|SIGBUS|Segmentation fault|exited on signal'
crashes() { cat /tmp/gw-*.log 2>/dev/null | grep -cE "$CRASH"; }
crash_line() { cat /tmp/gw-*.log 2>/dev/null | grep -E "$CRASH" | tail -n 1; }

# Stops the running gateway, if any. Its exit is a result of its own
# ("gateway-exit-MODE"): it must go within 10 s of SIGTERM and leave no
# crash or sanitizer report (LeakSanitizer speaks at exit).
stop_gateway() {
    [ -f /tmp/gw.pid ] || return 0
    pid=$(cat /tmp/gw.pid); c0=$(crashes)
    kill "$pid" 2>/dev/null
    i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        say "KTLS-RESULT FAIL gateway-exit-$gateway_started: still running 10 s after SIGTERM"
        kill -9 "$pid"
    elif [ "$(crashes)" -gt "$c0" ]; then
        say "KTLS-RESULT FAIL gateway-exit-$gateway_started: $(crash_line)"
        cat /tmp/gw-*.log | grep -E -A12 "$CRASH" | head -n 60 > /dev/console
    else
        say "KTLS-RESULT PASS gateway-exit-$gateway_started: clean exit on SIGTERM"
    fi
    rm -f /tmp/gw.pid
    gateway_started=0
}

gateway_started=0
start_gateway() { # MODE: the config /ktls/gateway-MODE.conf
    [ "$gateway_started" = "$1" ] && return 0
    stop_gateway
    gateway -p /tmp/ -c "/ktls/gateway-$1.conf" < /dev/null > "/tmp/gw-$1.log" 2>&1 &
    echo $! > /tmp/gw.pid
    gateway_started=$1
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        netstat -ltn 2>/dev/null | grep -q ":$GW_PORT " && return 0
        sleep 0.5
    done
    return 1
}

# Waits (up to ~5 s) for ktls_echo's line about connection number $1.
echo_line() {
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        line=$(grep '^ktls_echo:' /tmp/echo.log | sed -n "${1}p")
        [ -n "$line" ] && { echo "$line"; return; }
        sleep 0.25
    done
    echo "ktls_echo: no report"
}

echo_count=0
while read -r name kind version cipher a1 a2 a3 a4; do
    [ -z "$name" ] && continue
    case "$name" in \#*) continue ;; esac
    tx0=$(stat TlsTxSw); rx0=$(stat TlsRxSw); de0=$(stat TlsDecryptError)
    ok=1; why=""
    if [ "$kind" = echo ]; then
        echo_count=$((echo_count + 1))
        timeout 60 ktls_client 127.0.0.1 $ECHO_PORT "$version" "$cipher" $CA echo "$a1" < /dev/null \
            > /tmp/client.out 2> /tmp/client.err || { ok=0; why="client: $(tail -n 2 /tmp/client.err | sed "s/^ktls_client: //" | tr "\n" " ")"; }
        server=$(echo_line $echo_count)
        case "$server" in "ktls_echo: OK"*) ;; *) ok=0; why="$why; $server" ;; esac
        detail="$(head -n 1 /tmp/client.err | sed 's/^ktls_client: //'), $a1 bytes echoed"
        mode=ktls
    else
        mode=$a4
        start_gateway "$mode"; started=$?
        crash0=$(crashes)
        if [ $started != 0 ]; then
            ok=0; why="gateway did not start: $(tail -n 3 /tmp/gw-$mode.log | tr '\n' ' ')"
        else
            # gone before the client starts: the hold case polls client.err
            # while the client runs in the background
            rm -f /tmp/client.err
            : > /tmp/expect
            if [ "$a1" = post ]; then
                cp "$a3" /tmp/expect
                what="POST $(wc -c < "$a3") bytes to $a2"
            else
                what="$a3 x $a1 $a2"
            fi
            timeout 60 ktls_client 127.0.0.1 $GW_PORT "$version" "$cipher" $CA "$a1" "$a2" "$a3" < /dev/null \
                > /tmp/client.out 2> /tmp/client.err &
            client=$!
            if [ "$a1" = hold ]; then
                # the connection is open and idle: is it in the kernel right now?
                i=0; until grep -q holding /tmp/client.err || [ $i -ge 40 ]; do sleep 0.25; i=$((i + 1)); done
                curtx=$(stat TlsCurrTxSw); currx=$(stat TlsCurrRxSw)
                what="GET then idle with TlsCurrTxSw $curtx TlsCurrRxSw $currx"
                if [ "$mode" = ktls ]; then
                    [ "$curtx" -ge 1 ] && [ "$currx" -ge 1 ] || { ok=0; why="$why; live connection not in the kernel ($what)"; }
                else
                    [ "$curtx" = 0 ] && [ "$currx" = 0 ] || { ok=0; why="$why; live connection in the kernel with ssl_ktls off ($what)"; }
                fi
                a3=1
            fi
            wait $client || { ok=0; why="$why; client: $(tail -n 2 /tmp/client.err | sed "s/^ktls_client: //" | tr "\n" " ")"; }
            if [ "$a1" = tamper ]; then
                what="GET with a broken tag: $(grep -o 'tamper: .*' /tmp/client.err)"
            fi
            if [ "$a1" = keyupdate ]; then
                # the second answer is there only if the gateway followed the new key
                grep -q 'keyupdate: answered' /tmp/client.err && a3=2
                what="GET, KeyUpdate, GET: $(grep -o 'keyupdate: .*' /tmp/client.err)"
            fi
            if [ "$a1" != post ]; then
                i=0; while [ $i -lt "$a3" ]; do cat "/ktls/www$a2" >> /tmp/expect; i=$((i + 1)); done
            fi
            if [ $ok = 1 ] && ! cmp -s /tmp/client.out /tmp/expect; then
                ok=0; why="body differs ($(wc -c < /tmp/client.out) bytes, want $(wc -c < /tmp/expect))"
            fi
        fi
        kill -0 "$(cat /tmp/gw.pid)" 2>/dev/null || { ok=0; why="$why; the gateway died"; gateway_started=0; rm -f /tmp/gw.pid; }
        [ "$(crashes)" -gt "$crash0" ] && { ok=0; why="$why; in the gateway log: $(crash_line)"; }
        detail="$(head -n 1 /tmp/client.err | sed 's/^ktls_client: //'), $what through the gateway ($mode)"
    fi
    sleep 0.2   # the server's close runs after the client's exit
    tx1=$(stat TlsTxSw); rx1=$(stat TlsRxSw); de1=$(stat TlsDecryptError)
    counters="TlsTxSw $tx0->$tx1 TlsRxSw $rx0->$rx1"
    if [ "$mode" = ktls ]; then
        [ "$tx1" -gt "$tx0" ] || { ok=0; why="$why; kernel did not take TX ($counters)"; }
        [ "$rx1" -gt "$rx0" ] || { ok=0; why="$why; kernel did not take RX ($counters)"; }
    else
        [ "$tx1" = "$tx0" ] && [ "$rx1" = "$rx0" ] || { ok=0; why="$why; kTLS used with ssl_ktls off ($counters)"; }
    fi
    if [ "$kind" = gateway ] && [ "$a1" = tamper ] && [ "$mode" = ktls ]; then
        # the kernel, not wolfSSL, must be the one that refused the record
        [ "$de1" -gt "$de0" ] || { ok=0; why="$why; TlsDecryptError did not count the tampered record"; }
        counters="$counters TlsDecryptError $de0->$de1"
    else
        [ "$de1" = "$de0" ] || { ok=0; why="$why; TlsDecryptError $de0->$de1"; }
    fi
    if [ $ok = 1 ]; then
        say "KTLS-RESULT PASS $name: $detail; $counters"
    else
        say "KTLS-RESULT FAIL $name: ${why#; }"
        [ "$kind" = gateway ] && tail -n 5 "/tmp/gw-$mode.log" > /dev/console
    fi
done < /ktls/cases

stop_gateway
say "KTLS-STAT $(tr -s ' \n' ' ' < /proc/net/tls_stat)"
say "KTLS-END"
poweroff -f
